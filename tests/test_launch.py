"""The chart's launcher step (files/launch.py), run before LLaMA-Factory in the training and
merge containers: its choices against temporary output directories with complete, partial
and finished checkpoints laid out as transformers 5.6 + DeepSpeed 0.19.8 write them (the
drills of tests/gpu/worst-case-results.json ran the same code on a GPU), and its wiring
into the rendered objects. Its merge steps are in tests/test_launch_merge.py."""

import importlib.util
import json
import sys

import pytest
import yaml

from chartkit.chart import ROOT
from chartkit.pipeline import pod_spec
from harness.testkit import PRESETS, one, render

spec = importlib.util.spec_from_file_location("chart_launch", ROOT / "files" / "launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)


def checkpoint(out, step, *, state=True, weights=True, latest=True, tag_dir=True, state_step=None):
    """A checkpoint-N as the Trainer writes it, in write order: weights, DeepSpeed's tag
    directory and `latest`, trainer_state.json last. Leaving out the later files gives the
    directory a kill during the save leaves behind."""
    c = out / f"checkpoint-{step}"
    c.mkdir(parents=True)
    if weights:
        (c / "adapter_model.safetensors").write_bytes(b"w")
    if tag_dir:
        (c / f"global_step{step}").mkdir()
        (c / f"global_step{step}" / "mp_rank_00_model_states.pt").write_bytes(b"m")
    if latest:
        (c / "latest").write_text(f"global_step{step}")
    if state:
        (c / "trainer_state.json").write_text(json.dumps({"global_step": step if state_step is None else state_step}))
    return c


def cfg(out, **kw):
    return {"output_dir": str(out), "deepspeed": "/etc/llama-factory/ds_config.json", **kw}


def test_no_output_directory_starts_fresh(tmp_path):
    assert launch.decide(cfg(tmp_path / "sft"))["action"] == "fresh"


def test_resumes_from_the_newest_complete_checkpoint(tmp_path):
    for s in (3, 6, 9):
        checkpoint(tmp_path, s)
    d = launch.decide(cfg(tmp_path))
    assert d["action"] == "resume" and d["resume"] == str(tmp_path / "checkpoint-9") and d["incomplete"] == []


@pytest.mark.parametrize(
    "missing,why",
    [
        ({"state": False}, "no trainer_state.json"),
        ({"latest": False, "state": False}, "no trainer_state.json"),
        ({"latest": False}, "no DeepSpeed 'latest' tag"),
        ({"tag_dir": False}, "has no directory"),
        ({"weights": False}, "no model or adapter weights"),
        ({"state_step": 3}, "names step 3"),
    ],
)
def test_a_partial_newest_checkpoint_is_set_aside_and_the_complete_one_resumed(tmp_path, missing, why):
    checkpoint(tmp_path, 3)
    checkpoint(tmp_path, 6, **missing)
    d = launch.decide(cfg(tmp_path))
    assert d["action"] == "resume" and d["resume"] == str(tmp_path / "checkpoint-3")
    assert [c["path"] for c in d["incomplete"]] == [str(tmp_path / "checkpoint-6")] and why in d["incomplete"][0]["why"]
    launch.set_aside(d["incomplete"], rank=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3", "incomplete-checkpoint-6"]
    # After setting aside, the Trainer's own choice (the highest checkpoint-N) is the complete one.
    from_trainer = max((p for p in tmp_path.iterdir() if launch.CHECKPOINT.match(p.name)), key=lambda p: int(p.name.split("-")[1]))
    assert from_trainer.name == "checkpoint-3"


def test_an_unparsable_trainer_state_is_incomplete(tmp_path):
    c = checkpoint(tmp_path, 6)
    (c / "trainer_state.json").write_text('{"global_st')
    assert launch.checkpoint_status(c, True) == "trainer_state.json does not parse"


def test_without_deepspeed_the_tag_is_not_required(tmp_path):
    c = checkpoint(tmp_path, 4, latest=False, tag_dir=False)
    assert launch.checkpoint_status(c, False) == "complete"
    assert launch.checkpoint_status(c, True) != "complete"


def test_only_partial_checkpoints_start_fresh_after_setting_them_aside(tmp_path):
    checkpoint(tmp_path, 3, state=False)
    d = launch.decide(cfg(tmp_path))
    assert d["action"] == "fresh" and len(d["incomplete"]) == 1
    launch.set_aside(d["incomplete"], rank=0)
    launch.set_aside(d["incomplete"], rank=1, wait_s=0)  # other ranks wait for rank 0, then go on
    assert not any(launch.CHECKPOINT.match(p.name) for p in tmp_path.iterdir())


def test_a_second_set_aside_replaces_the_first(tmp_path):
    checkpoint(tmp_path, 6, state=False)
    (tmp_path / "incomplete-checkpoint-6").mkdir()
    (tmp_path / "incomplete-checkpoint-6" / "old").write_text("x")
    launch.set_aside(launch.decide(cfg(tmp_path))["incomplete"], rank=0)
    assert not (tmp_path / "incomplete-checkpoint-6" / "old").exists()


def test_a_finished_run_is_skipped_and_nothing_changes(tmp_path, capsys, monkeypatch):
    checkpoint(tmp_path, 8)
    for f in ("trainer_state.json", "train_results.json", "adapter_model.safetensors"):
        (tmp_path / f).write_text("{}")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(cfg(tmp_path)))
    monkeypatch.setitem(sys.modules, "llamafactory", None)  # would raise if it were imported
    assert launch.main(["train", str(config)]) == 0
    assert "llama-factory-launch: skip:" in capsys.readouterr().out
    before[config] = config.stat().st_mtime_ns
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_run_killed_before_its_final_save_is_not_finished(tmp_path):
    checkpoint(tmp_path, 8)
    (tmp_path / "adapter_model.safetensors").write_text("w")  # save_model ran, save_state did not
    assert launch.decide(cfg(tmp_path))["action"] == "resume"


@pytest.mark.parametrize("kw", [{"overwrite_output_dir": True}, {"resume_from_checkpoint": "/x/checkpoint-2"}])
def test_explicit_choices_of_the_user_are_kept(tmp_path, kw):
    checkpoint(tmp_path, 3, state=False)
    for f in launch.FINISHED:
        (tmp_path / f).write_text("{}")
    d = launch.decide(cfg(tmp_path, **kw))
    assert d["action"] == "as-is" and d["incomplete"] == []


def test_resume_hands_llamafactory_a_yaml_with_the_checkpoint(tmp_path, monkeypatch):
    checkpoint(tmp_path, 3)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(cfg(tmp_path, stage="sft")))
    seen = {}

    def run_module(name, run_name, alter_sys):
        seen["module"], seen["argv"] = name, list(sys.argv)

    monkeypatch.setattr(launch.runpy, "run_module", run_module)
    assert launch.main(["train", str(config)]) == 0
    assert seen["module"] == "llamafactory.launcher" and seen["argv"][1].endswith(".yaml")
    handed = yaml.safe_load(open(seen["argv"][1]))
    assert handed["resume_from_checkpoint"] == str(tmp_path / "checkpoint-3") and handed["stage"] == "sft"


# ------------------------------------------------------------------ run settings


def run_cfg(out, **kw):
    return cfg(
        out,
        **{
            "stage": "sft",
            "learning_rate": 1e-4,
            "dataset": "alpaca_en_demo",
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 4,
            "logging_steps": 5,
            **kw,
        },
    )


def test_a_fresh_run_records_its_settings_and_a_resume_of_the_same_settings_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(launch.runpy, "run_module", lambda *a, **k: None)
    out = tmp_path / "sft"
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(run_cfg(out)))
    assert launch.main(["train", str(config)]) == 0
    recorded = json.loads((out / launch.RUN).read_text())["settings"]
    assert recorded["learning_rate"] == 1e-4 and recorded["batch_per_device"] == 8
    assert "logging_steps" not in recorded and "output_dir" not in recorded
    checkpoint(out, 3)
    # Another split of the same batch, other logging: the same run (a bigger card resumes it).
    same = run_cfg(out, per_device_train_batch_size=8, gradient_accumulation_steps=1)
    same["logging_steps"] = 1
    assert launch.decide(same)["action"] == "resume"


@pytest.mark.parametrize("finished_run", [False, True])
def test_a_run_of_other_settings_is_neither_resumed_nor_skipped(tmp_path, capsys, monkeypatch, finished_run):
    out = tmp_path / "sft"
    monkeypatch.setenv("HOSTNAME", "lr1e4-llama-factory-sft-0a1b2c3d-worker-0")
    launch.record_run(run_cfg(out), rank=0)
    checkpoint(out, 3)
    if finished_run:
        for f in launch.FINISHED:
            (out / f).write_text("{}")
    monkeypatch.setitem(sys.modules, "llamafactory", None)  # would raise if it were imported
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(run_cfg(out, learning_rate=2e-5)))
    assert launch.main(["train", str(config)]) == 3
    said = capsys.readouterr().out
    assert "refuse:" in said and "learning_rate: 0.0001 there, 2e-05 now" in said, said
    assert "written by pod lr1e4-llama-factory-sft-0a1b2c3d-worker-0" in said, said
    assert "run=<name>" in said and "training.overwriteOutputDir=true" in said
    assert launch.decide(run_cfg(out, learning_rate=2e-5, overwrite_output_dir=True))["action"] == "as-is"


def test_a_run_from_before_the_settings_record_is_taken_as_this_one(tmp_path, capsys):
    checkpoint(tmp_path, 3)
    assert launch.decide(run_cfg(tmp_path))["action"] == "resume"
    assert f"has no {launch.RUN}" in capsys.readouterr().out


def test_only_rank_0_records_the_settings(tmp_path):
    launch.record_run(run_cfg(tmp_path / "a"), rank=1)
    assert not (tmp_path / "a" / launch.RUN).exists()
    launch.record_run(run_cfg(tmp_path / "a"), rank=0)
    assert (tmp_path / "a" / launch.RUN).is_file() and not list((tmp_path / "a").glob(".run-*"))


# ------------------------------------------------------ partial checkpointing


def test_the_launchers_key_is_taken_out_of_the_config_and_checked():
    lf, opts = launch.launcher_options({"stage": "sft", "checkpointed_layers": 4})
    assert lf == {"stage": "sft"} and opts == {"checkpointed_layers": 4}
    assert launch.launcher_options({"stage": "sft"}) == ({"stage": "sft"}, {})
    for bad in (0, -1, "4", True, 2.5):
        with pytest.raises(ValueError, match="checkpointed_layers"):
            launch.launcher_options({"checkpointed_layers": bad})


def test_llamafactory_gets_the_config_without_the_launchers_key(tmp_path, monkeypatch, capsys):
    """The key never reaches LLaMA-Factory (which refuses keys it does not know), the patch is
    applied first, and the key is not one of the run's settings (it changes speed and memory)."""
    out = tmp_path / "sft"
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(run_cfg(out, checkpointed_layers=4)))
    seen = {}
    monkeypatch.setattr(launch, "partial_checkpointing", lambda k, rank: seen.setdefault("patched", (k, rank)))

    def run_module(name, run_name, alter_sys):
        seen["argv"], seen["patched_first"] = list(sys.argv), "patched" in seen

    monkeypatch.setattr(launch.runpy, "run_module", run_module)
    assert launch.main(["train", str(config)]) == 0
    handed = yaml.safe_load(open(seen["argv"][1]))
    assert "checkpointed_layers" not in handed and handed["stage"] == "sft" and seen["argv"][1] != str(config)
    assert seen["patched"] == (4, 0) and seen["patched_first"]
    assert "checkpointed_layers" not in json.loads((out / launch.RUN).read_text())["settings"]
    # A resume of the same run with another number of layers (a smaller card) goes on.
    checkpoint(out, 3)
    assert launch.decide(launch.launcher_options(run_cfg(out, checkpointed_layers=12))[0])["action"] == "resume"


def test_the_key_with_checkpointing_off_is_ignored_and_said(tmp_path, monkeypatch, capsys):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(run_cfg(tmp_path / "sft", checkpointed_layers=4, disable_gradient_checkpointing=True)))
    monkeypatch.setattr(launch, "partial_checkpointing", lambda k, rank: pytest.fail("patched"))
    monkeypatch.setattr(launch.runpy, "run_module", lambda *a, **k: None)
    assert launch.main(["train", str(config)]) == 0
    assert "checkpointed_layers: 4 ignored: gradient checkpointing is off" in capsys.readouterr().out


class FakeLayer:
    """A decoder layer as transformers 5.6 hands it to the checkpointing function: its bound
    __call__ in a functools.partial, self_attn.layer_idx and the config's layer count."""

    def __init__(self, idx, n):
        from types import SimpleNamespace

        self.self_attn = SimpleNamespace(layer_idx=idx, config=SimpleNamespace(num_hidden_layers=n))
        self.calls = []

    def __call__(self, x, **kwargs):
        self.calls.append(x)
        return x + 1


def fake_llamafactory():
    """LLaMA-Factory's checkpointing module: its get_custom_gradient_checkpointing_func wraps the
    checkpoint function (here one that records which layers it was handed)."""
    import functools
    from types import SimpleNamespace

    checkpointed = []

    def checkpoint(func, *args, **kwargs):
        checkpointed.append(getattr(func.func.__self__.self_attn, "layer_idx", None))
        return func(*args, **kwargs)

    def get_custom_gradient_checkpointing_func(gradient_checkpointing_func):
        return functools.wraps(gradient_checkpointing_func)(
            lambda func, *args, **kwargs: gradient_checkpointing_func(func, *args, **kwargs)
        )

    return SimpleNamespace(get_custom_gradient_checkpointing_func=get_custom_gradient_checkpointing_func), checkpoint, checkpointed


@pytest.mark.parametrize(
    "k,n,said",
    [
        (2, 6, "decoder layers 0-1 of 6 checkpointed, 2-5 without"),
        (1, 3, "decoder layers 0 of 3 checkpointed, 1-2 without"),
        (8, 4, "decoder layers 0-3 of 4 checkpointed, none without"),
    ],
)
def test_only_the_first_k_layers_reach_the_checkpoint_function(k, n, said, capsys):
    import functools

    module, checkpoint, checkpointed = fake_llamafactory()
    launch.partial_checkpointing(k, rank=3, module=module)
    launch.partial_checkpointing(k, rank=3, module=module)  # applied once
    fn = module.get_custom_gradient_checkpointing_func(checkpoint)
    layers = [FakeLayer(i, n) for i in range(n)]
    for _step in range(2):
        x = 0
        for layer in layers:
            x = fn(functools.partial(layer.__call__, use_cache=False), x)
        assert x == n  # every layer ran, once a step
    assert checkpointed == [i for i in range(min(k, n))] * 2
    assert all(len(layer.calls) == 2 for layer in layers)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("llama-factory-launch:")]
    assert lines == [
        f"llama-factory-launch: rank 3: partial gradient checkpointing (checkpointed_layers: {k}): {said} (their activations kept)"
    ]


def test_a_layer_that_does_not_say_its_index_is_checkpointed(capsys):
    import functools

    module, checkpoint, checkpointed = fake_llamafactory()
    launch.partial_checkpointing(1, rank=0, module=module)
    fn = module.get_custom_gradient_checkpointing_func(checkpoint)
    a, b = FakeLayer(0, 2), FakeLayer(1, 2)
    b.self_attn = None  # a decoder layer of another shape
    for _ in range(2):
        for layer in (a, b):
            fn(functools.partial(layer.__call__), 0)
    assert checkpointed == [0, None, 0, None]
    assert "decoder layers 0 of 2 checkpointed (and layers of no index, checkpointed), none without" in capsys.readouterr().out


def test_another_llamafactory_without_the_function_fails_at_start():
    from types import SimpleNamespace

    with pytest.raises(RuntimeError, match="get_custom_gradient_checkpointing_func"):
        launch.partial_checkpointing(4, rank=0, module=SimpleNamespace())


# ---------------------------------------------------------------- wiring


@pytest.mark.parametrize("preset", PRESETS)
def test_the_deepspeedjob_runs_the_launcher_step_from_its_configmap(preset):
    objs = render(preset, "sft")
    dj = one(objs, "DeepSpeedJob")
    assert dj["spec"]["config"]["run"] == {"python": ["/etc/llama-factory/launch.py", "train", "/etc/llama-factory/train.yaml"]}
    assert dj["spec"]["config"]["localRank"] is False
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and "train.yaml" in o["data"])
    assert cm["data"]["launch.py"] == (ROOT / "files" / "launch.py").read_text()
    env = {e["name"]: e.get("value") for e in pod_spec(dj)["containers"][0]["env"]}
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"


@pytest.mark.parametrize("stage", ["merge-sft", "merge-dpo"])
def test_the_merge_job_runs_the_launcher_step(stage):
    objs = render("8b.yaml", stage)
    job = one(objs, "Job")
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["python", "-u", "/etc/llama-factory/launch.py", "export", "/etc/llama-factory/merge.yaml"]
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and "merge.yaml" in o["data"])
    assert cm["data"]["launch.py"] == (ROOT / "files" / "launch.py").read_text()


@pytest.mark.parametrize("sets,expected", [((), 2), (("training.saveTotalLimit=5",), 5), (("training.saveTotalLimit=null",), None)])
def test_save_total_limit_follows_the_value(sets, expected):
    cm = next(o for o in render("8b.yaml", "sft", *sets) if o["kind"] == "ConfigMap" and "train.yaml" in o["data"])
    assert yaml.safe_load(cm["data"]["train.yaml"]).get("save_total_limit") == expected


def test_an_empty_alloc_conf_sets_no_variable():
    dj = one(render("8b.yaml", "sft", "training.cudaAllocConf="), "DeepSpeedJob")
    names = [e["name"] for e in pod_spec(dj)["containers"][0]["env"]]
    assert "PYTORCH_CUDA_ALLOC_CONF" not in names
