"""Peer tier: the programs that will read the rendered configs check them.

Run as a separate process (`python -m harness.peer < jobs.json`), because
LLaMA-Factory's full checks need a one-process distributed environment and
import a heavy stack; it prints one JSON result per job. A job is
  {"id": str, "kind": "train" | "export", "config": {...},
   "ds_config": {...} | null, "world_size": int, "hidden_size": int}
and its result {"id", "errors": [str], "warnings": [str]}. Every check uses
the installed versions, which the harness installs from the same pins as the
training image (images/llama-factory/).

Train configs: the keys only the chart's launcher reads (files/launch.py, LAUNCHER_KEYS) are
checked and removed by the launcher's own code, as it does before LLaMA-Factory starts; then
LLaMA-Factory's `_parse_train_args` (unknown keys), the same
keys as a command line through `HfArgumentParser.parse_args_into_dataclasses`
(types and choices), then `get_train_args` (cross-field checks). The DeepSpeed
JSON: "auto" filled the way the Hugging Face Trainer fills it from the parsed
training arguments at the job's world size, then DeepSpeed's own DeepSpeedConfig,
and every top-level key must be one DeepSpeed reads. Export configs: the
inference-args parser that `llamafactory-cli export` uses.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from types import SimpleNamespace

# One process, rank 0 of a world of one: what get_train_args needs to accept
# a DeepSpeed config without a launcher (no GPU, no network).
os.environ.update(
    RANK="0",
    LOCAL_RANK="0",
    WORLD_SIZE="1",
    LOCAL_WORLD_SIZE="1",
    MASTER_ADDR="127.0.0.1",
    MASTER_PORT=os.environ.get("PEER_MASTER_PORT", "29533"),
    HF_HUB_OFFLINE="1",
    DISABLE_VERSION_CHECK="0",
    TOKENIZERS_PARALLELISM="false",
)


def _message(exc: BaseException) -> str:
    if isinstance(exc, SystemExit) and hasattr(sys.stderr, "getvalue"):
        # argparse reports on stderr, then exits: its last line is the message.
        lines = [line for line in sys.stderr.getvalue().splitlines() if line.strip()]
        return lines[-1] if lines else f"SystemExit: {exc}"
    return f"{type(exc).__name__}: {exc}".strip()


def _cli(config: dict) -> list[str]:
    args = []
    for k, v in config.items():
        if isinstance(v, list):
            v = ",".join(map(str, v))
        args += [f"--{k}", str(v)]
    return args


class _Recorder(dict):
    """A dict that remembers which keys were read (DeepSpeed ignores unknown keys)."""

    seen: set = set()

    def __getitem__(self, k):
        _Recorder.seen.add(k)
        return super().__getitem__(k)

    def get(self, k, default=None):
        _Recorder.seen.add(k)
        return super().get(k, default)

    def __contains__(self, k):
        _Recorder.seen.add(k)
        return super().__contains__(k)


def _ensure_process_group():
    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, verbose=False)


def check_deepspeed(ds: dict, training_args, world_size: int, hidden_size: int) -> list[str]:
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    errors = []

    class Args:  # the parsed training arguments, at the job's world size
        def __getattr__(self, name):
            return world_size if name == "world_size" else getattr(training_args, name)

    hf = HfTrainerDeepSpeedConfig(copy.deepcopy(ds))
    hf.trainer_config_process(Args())
    model = SimpleNamespace(config=SimpleNamespace(hidden_size=hidden_size, hidden_sizes=None))
    hf.trainer_config_finalize(Args(), model, num_training_steps=1000)
    filled = hf.config
    left = [k for k, v in json.loads(json.dumps(filled)).items() if v == "auto"]
    if left:
        errors.append(f"DeepSpeed keys still 'auto' after the Trainer's fill: {left}")

    class MPU:
        def get_data_parallel_world_size(self):
            return world_size

        def get_data_parallel_rank(self):
            return 0

        def get_model_parallel_world_size(self):
            return 1

        def get_model_parallel_rank(self):
            return 0

    _ensure_process_group()
    _Recorder.seen = set()
    try:
        DeepSpeedConfig(_Recorder(filled), mpu=MPU())
    except Exception as e:  # DeepSpeed's own message
        return errors + [f"DeepSpeedConfig: {_message(e)}"]
    unknown = sorted(set(filled) - _Recorder.seen)
    if unknown:
        errors.append(f"DeepSpeed config: unknown top-level key(s) {unknown}: DeepSpeed {_ds_version()} never reads them")
    return errors


def _ds_version() -> str:
    import deepspeed

    return deepspeed.__version__


def _chart_launcher():
    """The chart's files/launch.py as a module (its launcher_options)."""
    import importlib.util

    from chartkit.chart import ROOT

    spec = importlib.util.spec_from_file_location("chart_launch", ROOT / "files" / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_train(job: dict, tmp: str) -> list[str]:
    from llamafactory.hparams.parser import _TRAIN_ARGS, _parse_train_args, get_train_args
    from transformers import HfArgumentParser

    try:
        cfg, _ = _chart_launcher().launcher_options(dict(job["config"]))
    except ValueError as e:
        return [f"chart launcher (files/launch.py): {e}"]
    cfg["use_cpu"] = True  # the bf16 check needs a GPU otherwise
    cfg["output_dir"] = os.path.join(tmp, "out")
    if job.get("ds_config") is not None:
        path = os.path.join(tmp, "ds_config.json")
        with open(path, "w") as f:
            json.dump(job["ds_config"], f)
        cfg["deepspeed"] = path
    errors = []
    try:
        _parse_train_args(copy.deepcopy(cfg))
    except BaseException as e:  # argparse exits with SystemExit
        errors.append(f"LLaMA-Factory _parse_train_args: {_message(e)}")
    try:
        parsed = HfArgumentParser(_TRAIN_ARGS).parse_args_into_dataclasses(args=_cli(cfg), return_remaining_strings=True)
        if parsed[-1]:
            errors.append(f"HfArgumentParser: arguments not used: {parsed[-1]}")
    except BaseException as e:
        errors.append(f"HfArgumentParser: {_message(e)}")
    if errors:
        return errors
    try:
        _, _, training_args, _, _ = get_train_args(copy.deepcopy(cfg))
    except BaseException as e:
        return [f"LLaMA-Factory get_train_args: {_message(e)}"]
    if job.get("ds_config") is not None:
        errors += check_deepspeed(job["ds_config"], training_args, job["world_size"], job["hidden_size"])
    return errors


def check_export(job: dict, tmp: str) -> list[str]:
    from llamafactory.hparams.parser import get_infer_args

    try:
        model_args, _, _, _ = get_infer_args(copy.deepcopy(job["config"]))
    except BaseException as e:
        return [f"LLaMA-Factory get_infer_args: {_message(e)}"]
    if not model_args.export_dir:
        return ["export config: no export_dir"]
    return []


def main() -> int:
    jobs = json.load(sys.stdin)
    logging.disable(logging.WARNING)
    results = []
    for job in jobs:
        start = time.perf_counter()
        out, err = io.StringIO(), io.StringIO()
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                check = check_train if job["kind"] == "train" else check_export
                errors = check(job, tmp)
            except BaseException:
                errors = ["peer checker crashed: " + traceback.format_exc(limit=3)]
        results.append({"id": job["id"], "errors": errors, "seconds": round(time.perf_counter() - start, 2)})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
