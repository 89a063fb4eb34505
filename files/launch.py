#!/usr/bin/env python3
"""The chart's launcher step: run in every stage's container (training, merge,
download, eval) around its program, and in the init container of a stage that
waits for another stage of its release, so that a job restarted by Kubernetes
or T9k (backoffLimit, restartPolicy, a preempted node), re-applied by `helm
upgrade` / GitOps, or started with the rest of its pipeline does the right
thing with what is already on the PVC.

  python launch.py train <train.yaml>    (each rank of the DeepSpeedJob)
    - the output directory holds a finished run (trainer_state.json and
      train_results.json at its top, which LLaMA-Factory writes after the
      last step): log it and exit 0; nothing on the PVC changes;
    - otherwise resume from the newest *complete* checkpoint-N: its
      trainer_state.json (the Trainer writes it last) parses and names step
      N, the model or adapter weights are there, and with DeepSpeed the tag
      in `latest` (written at the end of DeepSpeed's save) names a directory
      that exists. Incomplete checkpoints (a kill during a save) are moved to
      incomplete-checkpoint-N by rank 0, so neither LLaMA-Factory nor the
      Trainer's checkpoint rotation ever picks them up;
    - no complete checkpoint: start from scratch;
    - training.overwriteOutputDir=true or an explicit resume_from_checkpoint:
      run unchanged.
    Every run leaves its settings in <output_dir>/.llama-factory-run.json (rank 0,
    before training): a skip or a resume over a run of other settings (another
    learning rate, dataset, method, ...) is refused with the keys that differ,
    instead of continuing someone else's run or ending at once on its results.
    Keys that change only speed, memory or logging do not count; the micro batch
    and accumulation count only as their product.
    Keys of the config that only this launcher reads (LAUNCHER_KEYS) are removed before
    LLaMA-Factory parses it (it refuses keys it does not know):
      checkpointed_layers: K - gradient checkpointing of the first K decoder layers only
      (training.gradientCheckpointingLayers, or the chart's choice for the card): the
      others keep their activations for the backward pass (more memory, no recomputation).
      Applied in this process by wrapping LLaMA-Factory's
      get_custom_gradient_checkpointing_func; each rank logs one line saying which layers
      it checkpointed, after its first forward pass.
    Then it runs `python -m llamafactory.launcher <config>` in this process.

  python launch.py export <merge.yaml>   (the merge Job)
    - export_dir already holds the merge of this adapter (.merged-from names
      the adapter file, its size and mtime): log it and exit 0;
    - otherwise export into <export_dir>.partial (a leftover one is removed)
      and rename it to export_dir only when the export succeeded, so a
      killed merge never leaves a half-written model where serving reads.

  python launch.py run [--skip-done] --output DIR [--input DIR ...] -- CMD ...   (download, eval)
    - runs CMD; with --skip-done, first skips (exit 0) when DIR holds the outcome of this
      stage's fingerprint from the same inputs (their records, or the files' sizes and times).

  python launch.py wait [--timeout S] [--interval S] STAGE=DIR@FINGERPRINT ...
    (the init container of a stage that reads what another stage of its release writes)
    - exit 0 when every DIR's record says its producer succeeded with that fingerprint;
    - exit 3 at once when a producer failed for good (its record says no retry follows),
      with the producer's message;
    - exit 4 after the timeout; meanwhile one log line per change of what it waits for.

Every stage that writes an output others read keeps a record of it next to the output:
`.<dir>.stage.json` (state running | failed | succeeded, the fingerprint of the stage —
the hash in its Job's name, from LLAMA_FACTORY_FINGERPRINT —, attempt n of
LLAMA_FACTORY_ATTEMPTS, whether a retry follows, the pod, a message).

Only the standard library and PyYAML (both in the image; `wait` needs only the standard
library, so that it runs in any image with python3).
"""
from __future__ import annotations

import functools
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TAG = "llama-factory-launch:"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
           "pytorch_model.bin", "pytorch_model.bin.index.json")
FINISHED = ("trainer_state.json", "train_results.json")
MERGED = ".merged-from"
RUN = ".llama-factory-run.json"
# Keys of the rendered train.yaml that only this launcher reads; removed before LLaMA-Factory
# parses the config, which refuses keys it does not know.
CHECKPOINTED_LAYERS = "checkpointed_layers"
LAUNCHER_KEYS = (CHECKPOINTED_LAYERS,)
# Where LLaMA-Factory 0.9.5 wraps the checkpointing function of every decoder layer.
CHECKPOINTING_MODULE = "llamafactory.model.model_utils.checkpointing"
# Keys of a training config that do not change what a run computes.
NOT_SETTINGS = ("output_dir", "overwrite_output_dir", "resume_from_checkpoint", "logging_steps", "save_steps",
                "save_total_limit", "plot_loss", "report_to", "overwrite_cache", "preprocessing_num_workers",
                "ddp_timeout", "dataset_dir", "deepspeed", "disable_gradient_checkpointing", CHECKPOINTED_LAYERS,
                "per_device_train_batch_size", "gradient_accumulation_steps")


def settings(cfg: dict) -> dict:
    """What a run computes: the config less NOT_SETTINGS, the batch per device as one number."""
    out = {k: v for k, v in cfg.items() if k not in NOT_SETTINGS}
    out["batch_per_device"] = int(cfg.get("per_device_train_batch_size", 1)) * int(cfg.get("gradient_accumulation_steps", 1))
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def other_run(cfg: dict, out: Path) -> str | None:
    """Why the run in `out` is not this config's (the keys that differ), or None."""
    path = out / RUN
    if not path.is_file():
        return None
    try:
        before = json.loads(path.read_text())["settings"]
    except (ValueError, KeyError, TypeError):
        return f"{RUN} does not parse"
    now = settings(cfg)
    keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if not keys:
        return None
    return ", ".join(f"{k}: {json.dumps(before.get(k))} there, {json.dumps(now.get(k))} now" for k in keys[:8]) \
        + (f" (and {len(keys) - 8} more)" if len(keys) > 8 else "")


def written_by(out: Path) -> str:
    """', written by pod <name>' from the run's record (the pod's name carries the release and
    the job), when it says."""
    try:
        pod = json.loads((out / RUN).read_text()).get("written_by")
    except (OSError, ValueError, AttributeError):
        return ""
    return f", written by pod {pod}" if pod else ""


def record_run(cfg: dict, rank: int) -> None:
    """Rank 0 writes the run's settings into its output directory (atomically)."""
    out = Path(cfg["output_dir"])
    if rank != 0 or (out / RUN).is_file():
        return
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".run-", dir=out)
    with os.fdopen(fd, "w") as f:
        json.dump({"settings": settings(cfg), "written_by": os.environ.get("HOSTNAME", "")}, f, sort_keys=True,
                  indent=1)
    os.replace(tmp, out / RUN)


def log(msg: str) -> None:
    print(f"{TAG} {msg}", flush=True)


def load_yaml(path: str) -> dict:
    import yaml  # not needed by `wait`, which runs in images without PyYAML
    return yaml.safe_load(Path(path).read_text())


def dump_yaml(cfg: dict, f) -> None:
    import yaml
    yaml.safe_dump(cfg, f, sort_keys=False)


# ------------------------------------------------------------------ records

def record_path(output: Path) -> Path:
    """Where a stage records the outcome of `output`: beside it, so that it also exists
    before the output does (a merge writes into <dir>.partial first)."""
    return output.parent / f".{output.name}.stage.json"


def read_record(output: Path) -> dict | None:
    try:
        rec = json.loads(record_path(output).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rec-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, sort_keys=True, indent=1)
    os.replace(tmp, path)


def input_stamp(path: Path) -> dict:
    """What an input was when a stage used it: the names, sizes and modification times of its
    top-level files (weights, configs, the producers' own markers), which change only when
    the producer writes it again."""
    try:
        files = sorted(p for p in path.iterdir() if p.is_file())
    except OSError:
        return {"missing": True}
    return {p.name: [p.stat().st_size, int(p.stat().st_mtime)] for p in files}


class Record:
    """The record a producer keeps of its output, for the stages after it (`wait`)."""

    def __init__(self, output: Path, inputs: list[Path] = ()):
        self.output = Path(output)
        self.fingerprint = os.environ.get("LLAMA_FACTORY_FINGERPRINT", "")
        self.attempts = max(1, int(os.environ.get("LLAMA_FACTORY_ATTEMPTS", "1") or 1))
        retried = os.environ.get("LLAMA_FACTORY_RETRIED_EXIT_CODES", "")
        # Empty: any failure is retried (a Job's backoffLimit); "none": none is.
        self.retried = None if not retried else {int(c) for c in retried.split(",") if c.strip().isdigit()}
        self.inputs = {str(p): input_stamp(Path(p)) for p in inputs}
        before = read_record(self.output)
        same = before and before.get("fingerprint") == self.fingerprint and before.get("state") != "succeeded"
        self.attempt = int(before.get("attempt", 0)) + 1 if same else 1

    def write(self, state: str, message: str, final: bool = False) -> None:
        write_json(record_path(self.output), {
            "state": state, "fingerprint": self.fingerprint, "attempt": self.attempt, "attempts": self.attempts,
            "final": final, "message": message, "pod": os.environ.get("HOSTNAME", ""),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "inputs": self.inputs})

    def start(self) -> None:
        self.write("running", f"attempt {self.attempt} of {self.attempts}")

    def fail(self, message: str, code: int = 1, permanent: bool = False) -> None:
        retried = code in self.retried if self.retried is not None else True
        final = permanent or not retried or self.attempt >= self.attempts
        self.write("failed", message, final=final)

    def succeed(self, message: str) -> None:
        self.write("succeeded", message)

    def done(self) -> str | None:
        """Why the output already holds this stage's outcome (same fingerprint, same inputs), or None."""
        rec = read_record(self.output)
        if not (rec and rec.get("state") == "succeeded" and self.fingerprint
                and rec.get("fingerprint") == self.fingerprint and self.output.is_dir()):
            return None
        if rec.get("inputs", {}) != self.inputs:
            return None
        return f"{self.output} holds this stage's outcome (fingerprint {self.fingerprint}, {rec.get('time')})"


def checkpoint_status(ckpt: Path, deepspeed: bool) -> str:
    """'complete', or why the checkpoint is not."""
    m = CHECKPOINT.match(ckpt.name)
    state = ckpt / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (the Trainer writes it last)"
    try:
        step = json.loads(state.read_text()).get("global_step")
    except (ValueError, OSError):
        return "trainer_state.json does not parse"
    if m and step != int(m.group(1)):
        return f"trainer_state.json names step {step}"
    if not any((ckpt / w).is_file() for w in WEIGHTS):
        return "no model or adapter weights"
    if deepspeed:
        latest = ckpt / "latest"
        if not latest.is_file():
            return "no DeepSpeed 'latest' tag"
        tag = latest.read_text().strip()
        if not tag or not (ckpt / tag).is_dir():
            return f"DeepSpeed tag {tag!r} has no directory"
    return "complete"


def finished(output_dir: Path) -> bool:
    return all((output_dir / f).is_file() for f in FINISHED)


def decide(cfg: dict) -> dict:
    """What to do with a training config: {'action': 'skip'|'resume'|'fresh'|'as-is'|'refuse', 'resume': path,
    'incomplete': [paths], 'reason': text}. A pure function of the config and the output directory."""
    out = Path(cfg["output_dir"])
    if cfg.get("overwrite_output_dir"):
        return {"action": "as-is", "incomplete": [], "reason": "overwrite_output_dir is set: LLaMA-Factory trains from scratch"}
    if cfg.get("resume_from_checkpoint"):
        return {"action": "as-is", "incomplete": [], "reason": f"resume_from_checkpoint is set to {cfg['resume_from_checkpoint']}"}
    if not out.is_dir():
        return {"action": "fresh", "incomplete": [], "reason": f"{out} does not exist yet"}
    differs = other_run(cfg, out)
    if differs:
        return {"action": "refuse", "incomplete": [],
                "reason": f"{out} holds a run of other settings{written_by(out)} ({differs}); it is neither "
                          "resumed nor reported as this run. Fix: give these settings a run of their own "
                          "(run=<name>: every stage of it, with the same name), or set "
                          "training.overwriteOutputDir=true to replace that run"}
    if not (out / RUN).is_file() and any(out.iterdir()):
        log(f"{out} has no {RUN} (a run from before the chart recorded settings): taken as this config's")
    if finished(out):
        return {"action": "skip", "incomplete": [],
                "reason": f"{out} holds a finished run ({' and '.join(FINISHED)}); nothing to do. To train again, "
                          "set training.overwriteOutputDir=true or write to another output directory"}
    deepspeed = bool(cfg.get("deepspeed"))
    ckpts = sorted((p for p in out.iterdir() if p.is_dir() and CHECKPOINT.match(p.name)),
                   key=lambda p: int(CHECKPOINT.match(p.name).group(1)), reverse=True)
    incomplete, resume = [], None
    for c in ckpts:
        status = checkpoint_status(c, deepspeed)
        if status == "complete":
            if resume is None:
                resume = c
        elif resume is None:  # only checkpoints newer than the one resumed matter
            incomplete.append({"path": str(c), "why": status})
    if resume is None:
        return {"action": "fresh", "incomplete": incomplete, "reason": "no complete checkpoint"}
    return {"action": "resume", "resume": str(resume), "incomplete": incomplete,
            "reason": f"newest complete checkpoint is {resume.name}"}


def set_aside(incomplete: list[dict], rank: int, wait_s: float = 600) -> None:
    """Rank 0 renames incomplete checkpoints; the other ranks wait until it has."""
    for c in incomplete:
        src = Path(c["path"])
        dst = src.with_name(f"incomplete-{src.name}")
        if rank == 0:
            if dst.exists():
                shutil.rmtree(dst)
            log(f"setting aside incomplete {src.name} ({c['why']}) as {dst.name}")
            src.rename(dst)
        else:
            deadline = time.time() + wait_s
            while src.exists() and time.time() < deadline:
                time.sleep(1)


def launcher_options(cfg: dict) -> tuple[dict, dict]:
    """The config LLaMA-Factory reads (LAUNCHER_KEYS removed) and the launcher's own options, checked."""
    opts = {k: cfg[k] for k in LAUNCHER_KEYS if k in cfg}
    k = opts.get(CHECKPOINTED_LAYERS)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"{CHECKPOINTED_LAYERS}: {k!r} is not a number of decoder layers (an integer >= 1)")
    return {key: v for key, v in cfg.items() if key not in LAUNCHER_KEYS}, opts


def _layer_of(func) -> object:
    """The module whose forward LLaMA-Factory's checkpointing wrapper was handed (transformers 5
    passes partial(super().__call__, **kwargs) of the decoder layer)."""
    return func.func.__self__ if isinstance(func, functools.partial) else getattr(func, "__self__", None)


def _layer_index(layer) -> tuple[int | None, int | None]:
    """(index of a decoder layer, number of decoder layers), None where the layer does not say."""
    attn = getattr(layer, "self_attn", None)
    idx = getattr(attn, "layer_idx", getattr(layer, "layer_idx", None))
    n = getattr(getattr(attn, "config", None), "num_hidden_layers", None)
    return (idx if isinstance(idx, int) else None), (n if isinstance(n, int) else None)


def _spans(idxs: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, start = [], None
    for i, x in enumerate(idxs):
        if start is None:
            start = x
        if i + 1 == len(idxs) or idxs[i + 1] != x + 1:
            out.append(str(start) if start == x else f"{start}-{x}")
            start = None
    return ", ".join(out) or "none"


def partial_checkpointing(k: int, rank: int, module=None) -> None:
    """Gradient checkpointing of decoder layers 0 .. k-1 only. LLaMA-Factory enables checkpointing
    on every decoder layer through get_custom_gradient_checkpointing_func(checkpoint_fn), whose
    result each layer calls with its forward; the wrapper installed here hands layers k and above
    their forward directly (they keep their activations for the backward pass) and the others to
    LLaMA-Factory's function as before. A layer that does not say its index is checkpointed.
    After the first forward pass through every layer the rank logs one line of what it did."""
    if module is None:
        import importlib
        module = importlib.import_module(CHECKPOINTING_MODULE)
    orig = getattr(module, "get_custom_gradient_checkpointing_func", None)
    if orig is None:
        raise RuntimeError(f"{CHECKPOINTED_LAYERS}: {CHECKPOINTING_MODULE} has no get_custom_gradient_checkpointing_func "
                           "(another LLaMA-Factory version?); partial checkpointing cannot be applied")
    if getattr(orig, "_chart_checkpointed_layers", None) is not None:
        return
    done: dict[int | None, bool] = {}
    state = {"said": False, "n": None}

    def say() -> None:
        state["said"] = True
        ckpt = sorted(i for i, c in done.items() if i is not None and c)
        plain = sorted(i for i, c in done.items() if i is not None and not c)
        n = state["n"] or len(ckpt) + len(plain)
        unknown = " (and layers of no index, checkpointed)" if None in done else ""
        log(f"rank {rank}: partial gradient checkpointing ({CHECKPOINTED_LAYERS}: {k}): decoder layers "
            f"{_spans(ckpt)} of {n} checkpointed{unknown}, {_spans(plain)} without (their activations kept)")

    def get_custom_gradient_checkpointing_func(gradient_checkpointing_func):
        inner = orig(gradient_checkpointing_func)

        @functools.wraps(inner)
        def first_layers_only(func, *args, **kwargs):
            idx, n = _layer_index(_layer_of(func))
            plain = idx is not None and idx >= k
            if not state["said"]:
                if idx in done:  # a second pass: every layer has been seen
                    say()
                else:
                    done[idx] = not plain
                    state["n"] = state["n"] or n
                    if n is not None and idx == n - 1:
                        say()
            return func(*args, **kwargs) if plain else inner(func, *args, **kwargs)

        return first_layers_only

    get_custom_gradient_checkpointing_func._chart_checkpointed_layers = k
    module.get_custom_gradient_checkpointing_func = get_custom_gradient_checkpointing_func


def train(config: str, launcher: str = "llamafactory.launcher") -> int:
    cfg, opts = launcher_options(load_yaml(config))
    rank = int(os.environ.get("RANK", "0"))
    # Rank 0 keeps the record of the output for the stages after this one.
    rec = Record(Path(cfg["output_dir"])) if rank == 0 else None
    d = decide(cfg)
    log(f"{d['action']}: {d['reason']}")
    if d["action"] == "skip":
        if rec:
            rec.succeed(d["reason"])
        return 0
    if d["action"] == "refuse":
        if rec:
            rec.fail(d["reason"], 3, permanent=True)
        return 3
    if rec:
        rec.start()
    set_aside(d["incomplete"], rank)
    if d["action"] in ("fresh", "resume"):
        record_run(cfg, rank)
    if d["action"] == "resume":
        log(f"resuming from {d['resume']}")
        cfg["resume_from_checkpoint"] = d["resume"]
    if d["action"] == "resume" or opts:
        # LLaMA-Factory reads a config only from a path ending in .yaml.
        fd, config = tempfile.mkstemp(prefix=f"train-rank{rank}-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            dump_yaml(cfg, f)
    k = opts.get(CHECKPOINTED_LAYERS)
    if k is not None:
        if cfg.get("disable_gradient_checkpointing"):
            log(f"rank {rank}: {CHECKPOINTED_LAYERS}: {k} ignored: gradient checkpointing is off "
                "(disable_gradient_checkpointing)")
        else:
            partial_checkpointing(k, rank)
    sys.argv = [launcher, config]
    with recording(rec):
        runpy.run_module(launcher, run_name="__main__", alter_sys=True)
    if rec:
        rec.succeed(f"trained into {cfg['output_dir']}")
    return 0


class recording:
    """Records a failure (an exception, sys.exit with a code, SIGTERM) of the work inside."""

    def __init__(self, rec: Record | None):
        self.rec = rec

    def __enter__(self):
        if self.rec:
            self._old = signal.signal(signal.SIGTERM, self._term)
        return self

    def _term(self, signum, frame):
        raise SystemExit(128 + signum)

    def __exit__(self, typ, exc, tb):
        if not self.rec:
            return False
        signal.signal(signal.SIGTERM, self._old)
        if typ is None:
            return False
        code = exc.code if isinstance(exc, SystemExit) else 1
        code = code if isinstance(code, int) else (0 if code is None else 1)
        if code != 0:
            self.rec.fail(f"exit {code}: {typ.__name__}: {exc}"[:2000], code)
        return False


def adapter_stamp(cfg: dict) -> dict:
    adapter = Path(cfg["adapter_name_or_path"])
    files = [adapter / w for w in WEIGHTS if (adapter / w).is_file()]
    return {"adapter": str(adapter), "files": {f.name: [f.stat().st_size, int(f.stat().st_mtime)] for f in files}}


def decide_export(cfg: dict) -> dict:
    export = Path(cfg["export_dir"])
    stamp = adapter_stamp(cfg) if cfg.get("adapter_name_or_path") else {}
    marker = export / MERGED
    if marker.is_file():
        try:
            done = json.loads(marker.read_text())
        except ValueError:
            done = None
        if done == stamp:
            return {"action": "skip", "stamp": stamp,
                    "reason": f"{export} already holds the merge of this adapter ({MERGED}); nothing to do. "
                              "Delete it to merge again"}
        return {"action": "merge", "stamp": stamp, "reason": f"{export} holds the merge of another adapter version"}
    if export.exists():
        return {"action": "merge", "stamp": stamp, "reason": f"{export} exists without {MERGED}: not a merge this chart finished"}
    return {"action": "merge", "stamp": stamp, "reason": f"{export} does not exist yet"}


def export(config: str, cli: tuple[str, ...] = ("llamafactory-cli", "export")) -> int:
    cfg = load_yaml(config)
    rec = Record(Path(cfg["export_dir"]), [Path(cfg[k]) for k in ("model_name_or_path", "adapter_name_or_path") if cfg.get(k)])
    d = decide_export(cfg)
    log(f"{d['action']}: {d['reason']}")
    if d["action"] == "skip":
        rec.succeed(d["reason"])
        return 0
    rec.start()
    with recording(rec):
        rc = _export(cfg, d, cli)
    if rc != 0:
        rec.fail(f"export failed (exit {rc})", rc)
    else:
        rec.succeed(f"merged into {cfg['export_dir']}")
    return rc


def _export(cfg: dict, d: dict, cli: tuple[str, ...]) -> int:
    final = Path(cfg["export_dir"])
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        log(f"removing the leftover {partial.name} of an interrupted merge")
        shutil.rmtree(partial)
    cfg["export_dir"] = str(partial)
    fd, tmp = tempfile.mkstemp(prefix="merge-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        dump_yaml(cfg, f)
    rc = subprocess.call([*cli, tmp])
    if rc != 0:
        log(f"export failed (exit {rc}); {final} is unchanged")
        return rc
    (partial / MERGED).write_text(json.dumps(d["stamp"]))
    if final.exists():
        old = final.with_name(final.name + ".replaced")
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
        partial.rename(final)
        shutil.rmtree(old)
    else:
        partial.rename(final)
    log(f"merged into {final}")
    return 0


def run(output: str, inputs: list[str], cmd: list[str], skip_done: bool) -> int:
    """Run a stage's command, keeping the record of its output; with skip_done, skip it when
    the output already holds this stage's outcome from the same inputs."""
    rec = Record(Path(output), [Path(i) for i in inputs])
    if skip_done:
        why = rec.done()
        if why:
            log(f"skip: {why}; nothing to do. To run it again, delete {record_path(rec.output)}")
            return 0
    log(f"run: {' '.join(cmd)}")
    rec.start()
    with recording(rec):
        rc = subprocess.call(cmd)
    if rc == 0:
        rec.succeed(f"{cmd[0]} finished")
    else:
        # A signal shows as a negative code here, as 128 + signal to the kubelet.
        rc = 128 - rc if rc < 0 else rc
        rec.fail(f"{cmd[0]} failed (exit {rc})", rc)
    return rc


# ------------------------------------------------------------------ wait

WAIT_FAILED, WAIT_TIMEOUT = 3, 4


def input_state(stage: str, path: Path, fingerprint: str) -> tuple[str, str]:
    """('ready' | 'failed' | 'waiting', what the input's record says)."""
    rec = read_record(path)
    if rec is None:
        return "waiting", f"{stage} has not started writing {path} yet"
    who = f"{stage} (pod {rec.get('pod') or '?'})"
    if rec.get("fingerprint") != fingerprint:
        return "waiting", (f"{path} holds the outcome of other settings (fingerprint {rec.get('fingerprint')!r}, "
                           f"{rec.get('state')}); waiting for this release's {stage} (fingerprint {fingerprint})")
    state, msg = rec.get("state"), rec.get("message", "")
    if state == "succeeded":
        if not path.is_dir():
            return "failed", (f"{stage} succeeded, but {path} is gone (deleted since). Fix: run {stage} again "
                              f"(delete {record_path(path)} and its Job, then helm upgrade)")
        return "ready", f"{stage} succeeded: {msg}"
    if state == "failed":
        attempt = f"attempt {rec.get('attempt')} of {rec.get('attempts')}"
        if rec.get("final"):
            return "failed", (f"{who} failed ({attempt}, no retry follows): {msg}. Fix what it says, then "
                              "re-run it (helm upgrade with the fix, or delete its Job and helm upgrade)")
        return "waiting", f"{who} failed ({attempt}): {msg}; waiting for its retry"
    return "waiting", f"{who} is running (attempt {rec.get('attempt')} of {rec.get('attempts')})"


def wait(specs: list[str], timeout: float, interval: float, heartbeat: float = 600) -> int:
    wanted = []
    for spec in specs:
        stage, sep, rest = spec.partition("=")
        path, sep2, fingerprint = rest.rpartition("@")
        if not (sep and sep2 and stage and path and fingerprint):
            print(f"bad input {spec!r}: want STAGE=DIR@FINGERPRINT", file=sys.stderr)
            return 2
        wanted.append((stage, Path(path), fingerprint))
    log("waiting for " + "; ".join(f"{s} to finish {p} (fingerprint {f})" for s, p, f in wanted)
        + f"; up to {int(timeout)} s")
    start, last, last_said = time.monotonic(), {}, 0.0
    while True:
        states = {(s, p): input_state(s, p, f) for s, p, f in wanted}
        now = time.monotonic()
        for key, (state, why) in states.items():
            if last.get(key) != (state, why) or now - last_said >= heartbeat:
                log(f"{state}: {why}")
        if now - last_said >= heartbeat or any(last.get(k) != v for k, v in states.items()):
            last_said = now
        last = states
        failed = [why for state, why in states.values() if state == "failed"]
        if failed:
            log("giving up: an input can never appear")
            return WAIT_FAILED
        if all(state == "ready" for state, _ in states.values()):
            log("every input is ready")
            return 0
        if now - start >= timeout:
            log(f"timed out after {int(now - start)} s (pipeline.waitTimeoutSeconds); still "
                + "; ".join(why for state, why in states.values() if state != "ready")
                + ". Fix: look at that stage (kubectl get jobs,dj), or raise pipeline.waitTimeoutSeconds")
            return WAIT_TIMEOUT
        time.sleep(min(interval, max(0.0, timeout - (now - start))))


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="launch.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("train").add_argument("config")
    sub.add_parser("export").add_argument("config")
    r = sub.add_parser("run")
    r.add_argument("--output", required=True)
    r.add_argument("--input", action="append", default=[])
    r.add_argument("--skip-done", action="store_true")
    r.add_argument("command", nargs=argparse.REMAINDER)
    w = sub.add_parser("wait")
    w.add_argument("--timeout", type=float, default=7 * 86400)
    w.add_argument("--interval", type=float, default=30)
    w.add_argument("inputs", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "train":
        return train(a.config)
    if a.cmd == "export":
        return export(a.config)
    if a.cmd == "wait":
        return wait(a.inputs, a.timeout, a.interval)
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("run: no command after --")
    return run(a.output, a.input, cmd, a.skip_done)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
