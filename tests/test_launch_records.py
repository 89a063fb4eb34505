"""Ordering inside one release (issue 13), the launcher's half: each stage waits for the
stages of its release that write what it reads, by the records the producers' launcher keeps
next to their outputs (files/launch.py `wait`, `Record`, `run`). These unit tests drive the
launcher against temporary directories: producer succeeded, failed for good, failed with a
retry to come, still running, partial output, another fingerprint, deleted output, timeout.
The rendered waits are in tests/test_pipeline_order.py."""

import importlib.util
import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from chartkit.chart import ROOT

spec = importlib.util.spec_from_file_location("chart_launch_order", ROOT / "files" / "launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)

FP = "0123abcd"


@pytest.fixture
def producer_env(monkeypatch):
    def set_env(fingerprint=FP, attempts=2, retried=None):
        monkeypatch.setenv("LLAMA_FACTORY_FINGERPRINT", fingerprint)
        monkeypatch.setenv("LLAMA_FACTORY_ATTEMPTS", str(attempts))
        if retried is None:
            monkeypatch.delenv("LLAMA_FACTORY_RETRIED_EXIT_CODES", raising=False)
        else:
            monkeypatch.setenv("LLAMA_FACTORY_RETRIED_EXIT_CODES", retried)

    set_env()
    return set_env


def wait(out, fingerprint=FP, timeout=0.3, stage="sft"):
    return launch.wait([f"{stage}={out}@{fingerprint}"], timeout=timeout, interval=0.02)


def produced(out, files=("adapter_model.safetensors",)):
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        (out / f).write_text("w")


# ---------------------------------------------------------------- records and wait


def test_an_input_whose_producer_succeeded_is_ready(tmp_path, producer_env, capsys):
    out = tmp_path / "saves" / "sft"
    rec = launch.Record(out)
    rec.start()
    produced(out)
    rec.succeed("trained")
    assert wait(out) == 0
    log = capsys.readouterr().out
    assert f"waiting for sft to finish {out} (fingerprint {FP})" in log and "every input is ready" in log


def test_a_directory_that_exists_is_not_a_finished_input(tmp_path, producer_env, capsys):
    out = tmp_path / "sft"
    produced(out, ("adapter_model.safetensors", "trainer_state.json", "train_results.json"))
    assert wait(out) == launch.WAIT_TIMEOUT  # no record: never started by this release
    rec = launch.Record(out)
    rec.start()  # partial output: the producer is still writing
    assert wait(out) == launch.WAIT_TIMEOUT
    log = capsys.readouterr().out
    assert "has not started writing" in log and "is running (attempt 1 of 2)" in log
    assert "timed out after" in log and "pipeline.waitTimeoutSeconds" in log


def test_a_producer_that_failed_for_good_fails_its_consumers_at_once(tmp_path, producer_env, capsys):
    out = tmp_path / "sft"
    producer_env(attempts=1)
    rec = launch.Record(out)
    rec.start()
    rec.fail("exit 1: ValueError: Cannot find valid samples", 1)
    t0 = time.monotonic()
    assert wait(out, timeout=60) == launch.WAIT_FAILED
    assert time.monotonic() - t0 < 5
    log = capsys.readouterr().out
    assert "no retry follows" in log and "Cannot find valid samples" in log and "giving up" in log


def test_a_failed_attempt_with_retries_left_is_waited_on_and_the_last_one_is_final(tmp_path, producer_env):
    out = tmp_path / "sft"
    producer_env(attempts=2)
    first = launch.Record(out)
    first.start()
    first.fail("OOM", 137)
    assert launch.read_record(out)["final"] is False
    assert wait(out) == launch.WAIT_TIMEOUT
    second = launch.Record(out)  # the controller's retry of the same stage
    assert second.attempt == 2
    second.start()
    second.fail("OOM", 137)
    assert launch.read_record(out)["final"] is True
    assert wait(out) == launch.WAIT_FAILED


def test_exit_codes_the_controller_does_not_retry_are_final(tmp_path, producer_env):
    # A DeepSpeedJob with restartPolicy ExitCode restarts only on signals.
    producer_env(attempts=4, retried="130,137,138,143")
    out = tmp_path / "sft"
    rec = launch.Record(out)
    rec.fail("a Python error", 1)
    assert launch.read_record(out)["final"] is True
    rec.fail("killed", 137)
    assert launch.read_record(out)["final"] is False


def test_an_output_of_other_settings_is_not_this_releases(tmp_path, producer_env, capsys):
    out = tmp_path / "sft"
    producer_env(fingerprint="ffff0000")
    launch.Record(out).succeed("an earlier run")
    produced(out)
    assert wait(out) == launch.WAIT_TIMEOUT
    assert "holds the outcome of other settings (fingerprint 'ffff0000'" in capsys.readouterr().out


def test_an_output_deleted_after_its_producer_succeeded_fails_the_wait(tmp_path, producer_env, capsys):
    out = tmp_path / "models" / "m-sft"
    launch.Record(out).succeed("merged")
    assert wait(out, stage="merge-sft") == launch.WAIT_FAILED
    assert "is gone" in capsys.readouterr().out


def test_the_wait_ends_when_the_producer_finishes_meanwhile(tmp_path, producer_env):
    out = tmp_path / "sft"
    rec = launch.Record(out)
    rec.start()

    def finish():
        time.sleep(0.3)
        produced(out)
        rec.succeed("trained")

    t = threading.Thread(target=finish)
    t.start()
    assert wait(out, timeout=30) == 0
    t.join()


def test_the_wait_needs_every_input(tmp_path, producer_env):
    a, b = tmp_path / "models" / "base", tmp_path / "sft"
    launch.Record(a).succeed("downloaded")
    produced(a)
    assert launch.wait([f"workspace={a}@{FP}", f"sft={b}@{FP}"], timeout=0.2, interval=0.02) == launch.WAIT_TIMEOUT
    launch.Record(b).succeed("trained")
    produced(b)
    assert launch.wait([f"workspace={a}@{FP}", f"sft={b}@{FP}"], timeout=0.2, interval=0.02) == 0


def test_the_wait_runs_without_pyyaml(tmp_path, producer_env):
    """vLLM's image runs the wait of the serve stage: only the standard library may be needed."""
    out = tmp_path / "m"
    launch.Record(out).succeed("merged")
    produced(out)
    code = (
        "import sys, builtins; real = builtins.__import__\n"
        "def imp(name, *a, **k):\n"
        "    if name == 'yaml': raise ImportError('no yaml here')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = imp\n"
        f"sys.argv = ['launch.py', 'wait', '--timeout=5', '--interval=0.1', 'merge-dpo={out}@{FP}']\n"
        f"import runpy; runpy.run_path({str(ROOT / 'files' / 'launch.py')!r}, run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("bad", ["sft", "sft=/x", "=/x@ab", "sft=@ab"])
def test_a_malformed_wait_argument_is_refused(bad, capsys):
    assert launch.wait([bad], timeout=0.1, interval=0.01) == 2
    assert "want STAGE=DIR@FINGERPRINT" in capsys.readouterr().err


# ---------------------------------------------------------------- producers keep records

FAKE_LAUNCHER = """
import sys, json, pathlib, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
out = pathlib.Path(cfg["output_dir"])
if cfg.get("learning_rate") == "explode":
    raise RuntimeError("CUDA out of memory")
out.mkdir(parents=True, exist_ok=True)
(out / "adapter_model.safetensors").write_text("w")
(out / "trainer_state.json").write_text(json.dumps({"global_step": 3}))
(out / "train_results.json").write_text("{}")
"""


@pytest.fixture
def fake_launcher(tmp_path, monkeypatch):
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / "fake_lf_launcher.py").write_text(FAKE_LAUNCHER)
    monkeypatch.syspath_prepend(str(mod))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    return "fake_lf_launcher"


def train_config(tmp_path, **kw):
    cfg = {
        "output_dir": str(tmp_path / "saves" / "sft"),
        "model_name_or_path": str(tmp_path / "models" / "m"),
        "learning_rate": 1e-4,
        "stage": "sft",
        **kw,
    }
    path = tmp_path / f"train-{len(kw)}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, cfg


def test_training_records_running_then_succeeded_and_a_rerun_keeps_it(tmp_path, producer_env, fake_launcher):
    path, cfg = train_config(tmp_path)
    assert launch.train(str(path), launcher=fake_launcher) == 0
    rec = launch.read_record(launch.Path(cfg["output_dir"]))
    assert rec["state"] == "succeeded" and rec["fingerprint"] == FP
    assert launch.train(str(path), launcher=fake_launcher) == 0  # finished: skipped, still succeeded
    assert launch.read_record(launch.Path(cfg["output_dir"]))["state"] == "succeeded"


def test_a_training_error_is_recorded_for_the_stages_after_it(tmp_path, producer_env, fake_launcher):
    producer_env(attempts=4, retried="130,137,138,143")
    path, cfg = train_config(tmp_path, learning_rate="explode")
    with pytest.raises(RuntimeError):
        launch.train(str(path), launcher=fake_launcher)
    rec = launch.read_record(launch.Path(cfg["output_dir"]))
    assert rec["state"] == "failed" and rec["final"] is True and "CUDA out of memory" in rec["message"]


def test_a_refused_rerun_of_other_settings_fails_the_stages_after_it_at_once(tmp_path, producer_env, fake_launcher):
    path, cfg = train_config(tmp_path)
    assert launch.train(str(path), launcher=fake_launcher) == 0
    path2, _ = train_config(tmp_path, learning_rate=2e-5, extra=1)
    assert launch.train(str(path2), launcher=fake_launcher) == 3
    rec = launch.read_record(launch.Path(cfg["output_dir"]))
    assert rec["state"] == "failed" and rec["final"] is True and "learning_rate" in rec["message"]


def test_only_rank_0_keeps_the_record(tmp_path, producer_env, fake_launcher, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    path, cfg = train_config(tmp_path)
    assert launch.train(str(path), launcher=fake_launcher) == 0
    assert launch.read_record(launch.Path(cfg["output_dir"])) is None


def command(tmp_path, code=0, out=None):
    """A stage command that writes a result file into `out` and exits with `code`, counting its runs."""
    counter = tmp_path / "runs"
    return [
        sys.executable,
        "-c",
        f"import pathlib; c = pathlib.Path({str(counter)!r}); c.write_text(str(int(c.read_text() or 0) + 1) if c.exists() else '1');"
        f"o = pathlib.Path({str(out)!r}); o.mkdir(parents=True, exist_ok=True); (o / 'results.json').write_text('{{}}');"
        f"raise SystemExit({code})",
    ], counter


def test_run_skips_an_eval_done_with_the_same_settings_on_the_same_model(tmp_path, producer_env, capsys):
    model, out = tmp_path / "models" / "m-dpo", tmp_path / "evals" / "m" / "dpo"
    produced(model, ("model.safetensors", "config.json"))
    cmd, runs = command(tmp_path, 0, out)
    assert launch.run(str(out), [str(model)], cmd, skip_done=True) == 0
    assert launch.run(str(out), [str(model)], cmd, skip_done=True) == 0
    assert runs.read_text() == "1" and "skip:" in capsys.readouterr().out
    producer_env(fingerprint="99999999")  # other settings (another task list, few-shot count...)
    assert launch.run(str(out), [str(model)], cmd, skip_done=True) == 0
    assert runs.read_text() == "2"
    os.utime(model / "model.safetensors", (1, 1))  # the model was merged again
    assert launch.run(str(out), [str(model)], cmd, skip_done=True) == 0
    assert runs.read_text() == "3"


def test_run_records_a_failure_and_passes_its_exit_code_on(tmp_path, producer_env):
    out = tmp_path / "evals" / "x"
    cmd, runs = command(tmp_path, 5, out)
    assert launch.run(str(out), [], cmd, skip_done=True) == 5
    rec = launch.read_record(out)
    assert rec["state"] == "failed" and "exit 5" in rec["message"] and rec["final"] is False
    assert launch.run(str(out), [], cmd, skip_done=True) == 5  # a failed run is never skipped
    assert runs.read_text() == "2" and launch.read_record(out)["final"] is True  # attempt 2 of 2


def test_export_records_its_outcome(tmp_path, producer_env):
    adapter, final = tmp_path / "saves" / "sft", tmp_path / "models" / "m-sft"
    produced(adapter)
    config = tmp_path / "merge.yaml"
    config.write_text(
        yaml.safe_dump(
            {"model_name_or_path": str(tmp_path / "models" / "m"), "adapter_name_or_path": str(adapter), "export_dir": str(final)}
        )
    )
    fake = (
        sys.executable,
        "-c",
        "import sys, yaml, pathlib; d = pathlib.Path(yaml.safe_load(open(sys.argv[1]))['export_dir']);"
        "d.mkdir(parents=True); (d / 'model.safetensors').write_text('x')",
    )
    assert launch.export(str(config), cli=fake) == 0
    assert launch.read_record(final)["state"] == "succeeded"
    assert wait(final, stage="merge-sft") == 0
