"""Peer tier: every LLaMA-Factory config and DeepSpeed JSON the chart renders is
checked by LLaMA-Factory's and DeepSpeed's own code, at the versions the
training image pins (images/llama-factory/). One checker process runs every
config (harness.peer, in a fork of the peer tier's forkserver)."""

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from chartkit import pipeline
from chartkit.chart import ROOT
from conftest import peer_missing
from harness.testkit import PRESETS, one, render

pytestmark = pytest.mark.skipif(peer_missing() is not None, reason=peer_missing() or "")

REQUIREMENTS = (ROOT / "images/llama-factory/requirements.txt").read_text()
PEER_REQUIREMENTS = (ROOT / "images/llama-factory/requirements-peer.txt").read_text()
HIDDEN = {8: 4096, 70: 8192}  # Llama-3.1 hidden sizes: DeepSpeed's model-dependent "auto" values


def train_job(job_id, objects, params):
    dj = one(objects, "DeepSpeedJob")
    return {
        "id": job_id,
        "kind": "train",
        "config": pipeline.config_data(objects, "train.yaml"),
        "ds_config": pipeline.config_data(objects, "ds_config.json"),
        "world_size": dj["spec"]["config"]["slotsPerWorker"] * dj["spec"]["worker"]["replicas"],
        "hidden_size": HIDDEN[params],
    }


def export_job(job_id, objects):
    return {"id": job_id, "kind": "export", "config": pipeline.config_data(objects, "merge.yaml")}


def preset_params(preset):
    return int(yaml.safe_load((ROOT / "values" / preset).read_text())["model"]["parametersBillion"])


CASES = {}
for _p in PRESETS:
    for _s in ("sft", "dpo"):
        CASES[f"{_p}/{_s}"] = ("train", _p, _s, ())
    for _s in ("merge-sft", "merge-dpo"):
        CASES[f"{_p}/{_s}"] = ("export", _p, _s, ())
# Variants the presets do not cover: every method, ZeRO stage and offload.
VARIANTS = {
    "full-zero3-4gpu": ("training.method=full", "training.gpusPerWorker=4", "training.deepspeed.zeroStage=3", "common.gpu.memoryGiB=80"),
    "qlora-8bit": ("training.method=qlora", "training.quantizationBits=8"),
    "zero1-offload-optimizer": ("training.deepspeed.zeroStage=1", "training.deepspeed.offloadOptimizer=true"),
    "zero3-offload-params": (
        "training.deepspeed.zeroStage=3",
        "training.deepspeed.offloadParams=true",
        "training.deepspeed.offloadOptimizer=true",
    ),
    # (training.enableLigerKernel needs liger-kernel, a GPU package of the image only.)
    "packing-fa2": ("training.flashAttn=fa2", "sft.extraArgs.neat_packing=true", "sft.maxSteps=100", "training.lora.alpha=32"),
    "no-eval": ("sft.valSize=0",),
}
for _v, _sets in VARIANTS.items():
    CASES[f"variant/{_v}"] = ("train", "8b.yaml", "sft", _sets)
# LLaMA-Factory's published image (values/image-upstream.yaml, no Liger) on every preset it can
# run (QLoRA needs bitsandbytes, which that image lacks): the configs it is given.
UPSTREAM = ("values/image-upstream.yaml",)
for _p in (p for p in PRESETS if "qlora" not in p):
    for _s in ("sft", "dpo"):
        CASES[f"upstream-image/{_p}/{_s}"] = ("train", _p, _s, (), UPSTREAM)
    for _s in ("merge-sft", "merge-dpo"):
        CASES[f"upstream-image/{_p}/{_s}"] = ("export", _p, _s, (), UPSTREAM)
# The escape hatches, misused: each must fail with the peer program's own message.
NEGATIVE = {
    "misspelled LLaMA-Factory key": (
        ("sft.extraArgs.learning_rat=0.1",),
        "Some keys are not used by the HfArgumentParser: ['learning_rat']",
    ),
    "LLaMA-Factory choice": (("sft.extraArgs.lr_scheduler_type=cosine_annealing",), "cosine_annealing"),
    "LLaMA-Factory type": (("sft.extraArgs.lora_rank=eight",), "--lora_rank/--lora-rank: invalid int value: 'eight'"),
    "misspelled DeepSpeed top-level key": (
        ("training.deepspeed.extraConfig.zero_optimisation.stage=2",),
        "unknown top-level key(s) ['zero_optimisation']",
    ),
    "misspelled DeepSpeed ZeRO key": (("training.deepspeed.extraConfig.zero_optimization.stagee=2",), "Extra inputs are not permitted"),
    "DeepSpeed batch against the world size": (("training.deepspeed.extraConfig.train_batch_size=7",), "train_batch_size"),
}
for _n, (_sets, _) in NEGATIVE.items():
    CASES[f"negative/{_n}"] = ("train", "8b.yaml", "sft", _sets)


@pytest.fixture(scope="module")
def results(peer_stack):
    jobs = []
    for job_id, (kind, preset, stage, sets, *values) in CASES.items():
        objects = render(preset, stage, *sets, values=values[0] if values else ())
        jobs.append(train_job(job_id, objects, preset_params(preset)) if kind == "train" else export_job(job_id, objects))
    # DeepSpeed's JIT-built ops (torch's extensions folder, built once: minutes on 2 cores): a
    # lock older than any build is a killed run's and is removed (DeepSpeed would wait on it
    # forever); a free port (two suites at once); and a time limit.
    extensions = Path(os.environ.get("TORCH_EXTENSIONS_DIR", Path.home() / ".cache" / "torch_extensions"))
    for lock in extensions.glob("**/lock"):
        if time.time() - lock.stat().st_mtime > 1800:
            lock.unlink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
        s.close()
        try:
            proc = peer_stack.run(
                "-m",
                "harness.peer",
                input=json.dumps(jobs),
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=1200,
                env={"TORCH_EXTENSIONS_DIR": str(extensions), "PEER_MASTER_PORT": port},
            )
        except subprocess.TimeoutExpired as e:
            tail = (e.stderr or b"")[-3000:].decode(errors="replace")
            pytest.fail(f"the peer run took over {e.timeout} s; its output so far:\n{tail}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["id"]: r["errors"] for r in json.loads(proc.stdout)}


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("negative/")])
def test_rendered_config_is_accepted(case, results):
    assert results[case] == []


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_misuse_fails_with_the_peer_message(name, results):
    errors = results[f"negative/{name}"]
    assert errors and NEGATIVE[name][1] in " ".join(errors), errors


@pytest.mark.parametrize("package", ["llamafactory", "deepspeed"])
def test_installed_versions_are_the_image_pins(package):
    want = re.search(rf"^{package}==(\S+)", REQUIREMENTS, re.M).group(1)
    assert importlib.metadata.version(package) == want


def test_installed_stack_is_the_image_pins():
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", PEER_REQUIREMENTS, re.M):
        assert importlib.metadata.version(name) == version, name


def test_chart_image_tag_names_the_pins():
    lf = re.search(r"^llamafactory==(\S+)", REQUIREMENTS, re.M).group(1)
    ds = re.search(r"^deepspeed==(\S+)", REQUIREMENTS, re.M).group(1)
    values = yaml.safe_load((ROOT / "values.yaml").read_text())
    assert values["images"]["llamaFactory"]["tag"] == f"{lf}-ds{ds}"
    assert values["images"]["llamaFactory"]["repository"] == "t9kpublic/llama-factory"
