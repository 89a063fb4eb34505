"""The invariants a reviewer checks by hand, on every preset × stage (the full
tier 3 grows in a later issue): the path chain, GPU counts, names, labels,
/dev/shm, secrets."""

import re

import pytest
import yaml

from chartkit import pipeline
from chartkit.chart import ROOT, STAGES
from chartkit.pipeline import pod_spec
from harness.testkit import PRESETS, one, pod_templates, rel, render

NAMES_LONG = "team-a-llama-3-1-70b-instruct-sft-experiment-no-42"  # Helm allows 53
NAME_RELEASES = ("llama31-a", "llama31-b", NAMES_LONG, NAMES_LONG + "x")
PREFETCH = [rel("70b-4xdp.yaml", s, name=n) for n in NAME_RELEASES for s in STAGES] + [
    rel("8b.yaml", s, values=("tests/values/rich.yaml",)) for s in STAGES
]

LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}
# Pod templates carry the labels that survive a chart upgrade (a Job's template is immutable).
POD_LABELS = LABELS - {"app.kubernetes.io/version", "helm.sh/chart"}


def stage_io(preset, stage, *sets):
    return pipeline.stage_io(stage, render(preset, stage, *sets))


@pytest.mark.parametrize("preset", PRESETS)
def test_each_stage_reads_what_the_stage_before_wrote(preset):
    io = {s: stage_io(preset, s) for s in STAGES}
    (base,) = io["workspace"].writes
    assert io["sft"].reads == [base]
    (sft_adapter,) = io["sft"].writes
    assert io["merge-sft"].reads == [base, sft_adapter]
    (sft_model,) = io["merge-sft"].writes
    assert io["dpo"].reads == [sft_model]
    (dpo_adapter,) = io["dpo"].writes
    assert io["merge-dpo"].reads == [sft_model, dpo_adapter]
    (dpo_model,) = io["merge-dpo"].writes
    assert io["eval"].reads == [dpo_model] and io["serve"].reads == [dpo_model]
    assert len({base, sft_adapter, sft_model, dpo_adapter, dpo_model}) == 5


@pytest.mark.parametrize(
    "model,lora,reads",
    [
        ("base", False, ["models/M"]),
        ("sft", False, ["models/M-sft"]),
        ("sft", True, ["models/M", "saves/M/lora/sft"]),
        ("dpo", True, ["models/M-sft", "saves/M/lora/dpo"]),
    ],
)
def test_serve_and_eval_read_the_chosen_model(model, lora, reads):
    io = stage_io("8b.yaml", "serve", "model.name=M", f"serving.model={model}", f"serving.lora={str(lora).lower()}")
    assert io.reads == [f"/t9k/mnt/{r}" for r in reads]
    if not lora:
        assert stage_io("8b.yaml", "eval", "model.name=M", f"eval.model={model}").reads == [f"/t9k/mnt/{reads[0]}"]


def test_full_fine_tuning_feeds_dpo_eval_and_serve_directly():
    sets = ("training.method=full", "training.gpusPerWorker=4", "training.deepspeed.zeroStage=3", "common.gpu.memoryGiB=80")
    (sft_out,) = stage_io("8b.yaml", "sft", *sets).writes
    assert stage_io("8b.yaml", "dpo", *sets).reads == [sft_out]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_gpu_limit_is_slots_per_worker(preset, stage):
    dj = one(render(preset, stage), "DeepSpeedJob")
    (c,) = pod_spec(dj)["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == dj["spec"]["config"]["slotsPerWorker"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == dj["spec"]["config"]["slotsPerWorker"]


@pytest.mark.parametrize("preset", PRESETS)
def test_vllm_tensor_parallel_is_the_gpu_limit(preset):
    c = one(render(preset, "serve"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert f"--tensor-parallel-size={c['resources']['limits']['nvidia.com/gpu']}" in c["args"]


def _mib(q):
    return int(q[:-2]) * {"Mi": 1, "Gi": 1024, "Ti": 1024**2}[q[-2:]]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("stage", STAGES)
def test_pods_have_resources_labels_and_sized_shm(preset, stage):
    for obj, spec, meta in pod_templates(render(preset, stage)):
        if meta:  # a Notebook's pod template carries no metadata
            assert POD_LABELS <= set(meta["labels"]), obj["metadata"]["name"]
        assert LABELS <= set(obj["metadata"]["labels"])
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            assert {"requests", "limits"} <= set(c["resources"]), c["name"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            for m in c.get("volumeMounts", []):
                if m["mountPath"] == "/dev/shm":
                    ed = vols[m["name"]]["emptyDir"]
                    assert ed["medium"] == "Memory" and "sizeLimit" in ed
                    assert 2 * _mib(ed["sizeLimit"]) <= _mib(c["resources"]["limits"]["memory"])


def test_names_fit_63_characters_and_never_collide_across_releases():
    seen = {}
    for release in NAME_RELEASES:
        for stage in STAGES:
            for o in render("70b-4xdp.yaml", stage, name=release):
                name, kind = o["metadata"]["name"], o["kind"]
                assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
                if kind in ("DeepSpeedJob", "Job"):
                    assert len(name) <= 52, f"{name}: the controller's pod names must stay under 63"
                if kind == "PersistentVolumeClaim":
                    continue  # shared by design
                key = (kind, name)
                assert key not in seen, f"{key} rendered by {seen.get(key)} and {(release, stage)}"
                seen[key] = (release, stage)


TOKENISH = re.compile(r"(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,})")


@pytest.mark.parametrize("stage", STAGES)
def test_tokens_only_by_secret_reference(stage):
    objects = render("8b.yaml", stage, values=("tests/values/rich.yaml",))
    for _obj, spec, _ in pod_templates(objects):
        for c in spec["containers"]:
            for e in c.get("env", []):
                if e["name"] in ("HF_TOKEN", "VLLM_API_KEY", "WANDB_API_KEY"):
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], e
    assert not TOKENISH.search(str(objects))


def _cpus(q):
    return float(q[:-1]) / 1000 if str(q).endswith("m") else float(q)


def _train_gib_per_gpu(cfg, ds, params_b, world):
    """Model-state memory per GPU, estimated independently of the chart's helper."""
    bits = cfg.get("quantization_bit")
    weights = params_b * ({4: 0.55, 8: 1.05}[bits] if bits else 2.0)
    stage = ds["zero_optimization"]["stage"]
    if cfg["finetuning_type"] == "full":
        grads, optim = 2.0 * params_b, 12.0 * params_b
        optim = optim / world if stage >= 1 else optim
        grads = grads / world if stage >= 2 else grads
        weights = weights / world if stage >= 3 else weights
        return weights + grads + optim
    return weights / world if stage >= 3 else weights


PARAMS = {"8b.yaml": 8, "8b-2xdp.yaml": 8, "70b-4xdp.yaml": 70, "70b-4xdp-qlora.yaml": 70}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_world_size_batch_and_zero_fit(preset, stage):
    objects = render(preset, stage)
    dj = one(objects, "DeepSpeedJob")
    cfg = pipeline.config_data(objects, "train.yaml")
    ds = pipeline.config_data(objects, "ds_config.json")
    world = dj["spec"]["config"]["slotsPerWorker"] * dj["spec"]["worker"]["replicas"]
    # DeepSpeed's batch keys are left to the HF Trainer ("auto"), or agree with LLaMA-Factory's.
    micro, accum = cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"]
    for key, want in (
        ("train_micro_batch_size_per_gpu", micro),
        ("gradient_accumulation_steps", accum),
        ("train_batch_size", micro * accum * world),
    ):
        assert ds[key] in ("auto", want), key
    card = yaml.safe_load((ROOT / "values" / preset).read_text())["common"]["gpu"]["memoryGiB"]
    assert _train_gib_per_gpu(cfg, ds, PARAMS[preset], world) <= 0.8 * card


def test_batch_invariant_catches_a_wrong_deepspeed_batch():
    objects = render("8b-2xdp.yaml", "sft", "training.deepspeed.extraConfig.train_batch_size=16")
    ds = pipeline.config_data(objects, "ds_config.json")
    cfg = pipeline.config_data(objects, "train.yaml")
    assert ds["train_batch_size"] != cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"] * 2


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("stage", STAGES)
def test_mounted_config_keys_exist_and_are_used(preset, stage):
    objects = render(preset, stage)
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    for obj, spec, _ in pod_templates(objects):
        vols = {v["name"]: v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
        for c in spec["containers"]:
            text = str(c.get("command", [])) + str(c.get("args", [])) + str(obj.get("spec", {}).get("config", {}))
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    continue
                data = maps[vols[m["name"]]]
                referenced = set(re.findall(re.escape(m["mountPath"]) + r"/([\w.-]+)", text))
                for value in data.values():  # configs that point at their siblings
                    referenced |= set(re.findall(re.escape(m["mountPath"]) + r"/([\w.-]+)", value))
                assert referenced, f"{obj['kind']}: nothing refers to {m['mountPath']}"
                assert referenced <= set(data), f"{obj['kind']}: {referenced - set(data)} missing from the ConfigMap"
        if obj["kind"] == "DeepSpeedJob":
            cfg = pipeline.config_data(objects, "train.yaml")
            assert cfg["dataset_dir"] in [m["mountPath"] for m in c["volumeMounts"]]
            assert "dataset_info.json" in maps[vols["config"]]
            cpus = _cpus(c["resources"]["limits"]["cpu"])
            assert cfg["preprocessing_num_workers"] <= cpus


# The memory rule that replaced the logits check (it sized the logits by the typed micro
# batch, not by the worst case the config allows) is pinned in tests/test_memory_model.py.


@pytest.mark.parametrize("preset", PRESETS)
def test_launcher_command_is_the_one_the_gpu_proof_ran(preset):
    """scripts/gpu_proof.py runs chartkit.launcher's command; pin it for every preset."""
    from chartkit import launcher

    dj = one(render(preset, "sft"), "DeepSpeedJob")
    cmd = launcher.command(dj, "/t9k/hostfile", python="python")
    assert cmd == [
        "python",
        "-m",
        "deepspeed.launcher.runner",
        "--hostfile=/t9k/hostfile",
        "--no_local_rank",
        "--no_ssh_check",
        "--master_addr=127.0.0.1",
        "/etc/llama-factory/launch.py",
        "train",
        "/etc/llama-factory/train.yaml",
    ]
    slots = dj["spec"]["config"]["slotsPerWorker"]
    assert launcher.hostfile(dj) == f"{dj['metadata']['name']}-worker-0 slots={slots}\n"
