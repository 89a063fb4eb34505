#!/usr/bin/env python3
"""The chart's launcher step: run in the training and merge containers before
LLaMA-Factory, so that a job restarted by Kubernetes or T9k (backoffLimit,
restartPolicy, a preempted node) or re-applied by `helm upgrade` / GitOps does
the right thing with what is already on the PVC.

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
    Then it runs `python -m llamafactory.launcher <config>` in this process.

  python launch.py export <merge.yaml>   (the merge Job)
    - export_dir already holds the merge of this adapter (.merged-from names
      the adapter file, its size and mtime): log it and exit 0;
    - otherwise export into <export_dir>.partial (a leftover one is removed)
      and rename it to export_dir only when the export succeeded, so a
      killed merge never leaves a half-written model where serving reads.

Only the standard library and PyYAML (both in the image).
"""
from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TAG = "llama-factory-launch:"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
           "pytorch_model.bin", "pytorch_model.bin.index.json")
FINISHED = ("trainer_state.json", "train_results.json")
MERGED = ".merged-from"
RUN = ".llama-factory-run.json"
# Keys of a training config that do not change what a run computes.
NOT_SETTINGS = ("output_dir", "overwrite_output_dir", "resume_from_checkpoint", "logging_steps", "save_steps",
                "save_total_limit", "plot_loss", "report_to", "overwrite_cache", "preprocessing_num_workers",
                "ddp_timeout", "dataset_dir", "deepspeed", "disable_gradient_checkpointing",
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


def train(config: str) -> int:
    cfg = yaml.safe_load(Path(config).read_text())
    rank = int(os.environ.get("RANK", "0"))
    d = decide(cfg)
    log(f"{d['action']}: {d['reason']}")
    if d["action"] == "skip":
        return 0
    if d["action"] == "refuse":
        return 3
    set_aside(d["incomplete"], rank)
    if d["action"] in ("fresh", "resume"):
        record_run(cfg, rank)
    if d["action"] == "resume":
        log(f"resuming from {d['resume']}")
        cfg["resume_from_checkpoint"] = d["resume"]
        # LLaMA-Factory reads a config only from a path ending in .yaml.
        fd, config = tempfile.mkstemp(prefix=f"train-rank{rank}-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
    sys.argv = ["llamafactory.launcher", config]
    runpy.run_module("llamafactory.launcher", run_name="__main__", alter_sys=True)
    return 0


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
    cfg = yaml.safe_load(Path(config).read_text())
    d = decide_export(cfg)
    log(f"{d['action']}: {d['reason']}")
    if d["action"] == "skip":
        return 0
    final = Path(cfg["export_dir"])
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        log(f"removing the leftover {partial.name} of an interrupted merge")
        shutil.rmtree(partial)
    cfg["export_dir"] = str(partial)
    fd, tmp = tempfile.mkstemp(prefix="merge-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
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


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("train", "export"):
        print("usage: launch.py train <train.yaml> | export <merge.yaml>", file=sys.stderr)
        return 2
    return train(argv[1]) if argv[0] == "train" else export(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
