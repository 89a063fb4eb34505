"""Peer tier: partial gradient checkpointing (training.gradientCheckpointingLayers) as the chart's
launcher applies it, with real LLaMA-Factory 0.9.5 training on CPU. The chart's rendered train.yaml
(values/8b.yaml sft with the value set) is run through files/launch.py train, as a DeepSpeedJob's
rank runs it (a process of its own: a fork of the peer tier's forkserver), on a tiny randomly
initialised Llama of 4 decoder layers, with its paths moved to a temporary directory and the
GPU-only settings (DeepSpeed, Liger, bf16) off.

What the run is observed to do, independently of what the launcher says: every call of
torch.utils.checkpoint.checkpoint and every forward of a decoder layer (LlamaDecoderLayer.forward,
with whether autograd recorded it) is logged by a spy around the launcher. With K layers
checkpointed, exactly layers 0 .. K-1 go through torch's checkpoint, run their forward twice a
step (once without autograd, once recomputed in the backward pass) and the others once with
autograd; the launcher says so in one line; LLaMA-Factory accepts the config (the launcher removed
its own key) and trains every layer's adapter. With all layers checkpointed (no key), every layer
goes through torch's checkpoint: the spy sees what it should."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from chartkit import pipeline
from chartkit.chart import ROOT
from conftest import peer_missing
from harness.testkit import render

pytestmark = pytest.mark.skipif(peer_missing() is not None, reason=peer_missing() or "")

LAYERS, STEPS = 4, 2
# Runs the chart's launcher as a rank runs it, with spies on torch's checkpoint and the layers.
DRIVER = """
import functools, runpy, sys
import torch
import torch.utils.checkpoint as cp
from transformers.models.llama import modeling_llama as ml

def layer_of(function):
    return function.func.__self__ if isinstance(function, functools.partial) else function.__self__

orig_checkpoint = cp.checkpoint
def checkpoint(function, *args, **kwargs):
    print(f"SPY checkpoint {layer_of(function).self_attn.layer_idx}", flush=True)
    return orig_checkpoint(function, *args, **kwargs)
cp.checkpoint = checkpoint

orig_forward = ml.LlamaDecoderLayer.forward
def forward(self, *args, **kwargs):
    print(f"SPY forward {self.self_attn.layer_idx} grad={torch.is_grad_enabled()}", flush=True)
    return orig_forward(self, *args, **kwargs)
ml.LlamaDecoderLayer.forward = forward

sys.argv = [sys.argv[1], "train", sys.argv[2]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, peer_stack):
    root = tmp_path_factory.mktemp("pvc")
    base = root / "models" / "tiny"
    made = peer_stack.run("-m", "harness.tiny_llama", str(base), "--layers", str(LAYERS), capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    data = root / "data"
    data.mkdir()
    rows = [{"instruction": f"w{i} w{i + 1} w{i + 2}", "input": "", "output": " ".join(f"w{i + j}" for j in range(40))} for i in range(16)]
    (data / "tiny_sft.json").write_text(json.dumps(rows))
    (data / "dataset_info.json").write_text(json.dumps({"tiny_sft": {"file_name": "tiny_sft.json"}}))
    (root / "driver.py").write_text(DRIVER)
    return {"root": root, "base": base, "data": data, "stack": peer_stack}


def train(workspace, name: str, *sets: str) -> dict:
    """The chart's train.yaml for values/8b.yaml sft with `sets`, run through files/launch.py on CPU."""
    # An 80 GB card: the chart's memory check admits 8B with any number of layers checkpointed.
    rendered = pipeline.config_data(render("8b.yaml", "sft", "common.gpu.memoryGiB=80", *sets), "train.yaml")
    out = workspace["root"] / "saves" / name
    cfg = dict(
        rendered,
        model_name_or_path=str(workspace["base"]),
        dataset_dir=str(workspace["data"]),
        dataset="tiny_sft",
        output_dir=str(out),
        cutoff_len=64,
        max_steps=STEPS,
        logging_steps=1,
        save_steps=1000,
        preprocessing_num_workers=1,
        enable_liger_kernel=False,
        bf16=False,
        use_cpu=True,
        learning_rate=1.0e-2,
        warmup_ratio=0.0,
    )
    for key in ("deepspeed", "val_size", "per_device_eval_batch_size", "eval_strategy", "eval_steps"):
        cfg.pop(key, None)
    config = workspace["root"] / f"{name}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = workspace["stack"].run(
        str(workspace["root"] / "driver.py"),
        str(ROOT / "files" / "launch.py"),
        str(config),
        capture_output=True,
        text=True,
        cwd=workspace["root"],
        timeout=900,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    checkpointed = Counter(int(i) for i in re.findall(r"^SPY checkpoint (\d+)$", text, re.M))
    forwards = Counter((int(i), g == "True") for i, g in re.findall(r"^SPY forward (\d+) grad=(True|False)$", text, re.M))
    return {
        "rendered": rendered,
        "out": out,
        "text": text,
        "checkpointed": checkpointed,
        "forwards": forwards,
        "launch": [ln for ln in text.splitlines() if ln.startswith("llama-factory-launch: rank")],
    }


def adapter_b_norms(out: Path) -> dict[int, float]:
    """The norm of every decoder layer's LoRA B matrices (zero at the start: non-zero once trained)."""
    import numpy
    from safetensors.numpy import load_file

    norms: dict[int, float] = {}
    for name, t in load_file(str(out / "adapter_model.safetensors")).items():
        m = re.search(r"\.layers\.(\d+)\..*lora_B", name)
        if m:
            norms[int(m.group(1))] = norms.get(int(m.group(1)), 0.0) + float(numpy.linalg.norm(t.astype(numpy.float64)))
    return norms


def finished(out: Path) -> int:
    return json.loads((out / "trainer_state.json").read_text())["global_step"]


@pytest.mark.parametrize("k", [2])
def test_exactly_the_first_k_layers_are_checkpointed(workspace, k):
    run = train(workspace, f"k{k}", f"training.gradientCheckpointingLayers={k}")
    assert run["rendered"]["checkpointed_layers"] == k and run["rendered"]["disable_gradient_checkpointing"] is False
    # Only layers 0 .. k-1 went through torch's checkpoint, once a step.
    assert run["checkpointed"] == {i: STEPS for i in range(k)}, run["checkpointed"]
    # They ran forward without autograd and again, recomputed, with it; the others once, with it.
    want = Counter({(i, False): STEPS for i in range(k)} | {(i, True): STEPS for i in range(LAYERS)})
    assert run["forwards"] == want, run["forwards"]
    # One line of the launcher (one rank) says what it did.
    plain = f"{k}-{LAYERS - 1}" if k < LAYERS - 1 else f"{k}"
    first = "0" if k == 1 else f"0-{k - 1}"
    assert run["launch"] == [
        f"llama-factory-launch: rank 0: partial gradient checkpointing (checkpointed_layers: {k}): "
        f"decoder layers {first} of {LAYERS} checkpointed, {plain} without (their activations "
        "kept)"
    ], run["launch"]
    # LLaMA-Factory trained every step and every layer's adapter, on a config without the key.
    assert finished(run["out"]) == STEPS
    assert all(n > 0 for n in adapter_b_norms(run["out"]).values()) and len(adapter_b_norms(run["out"])) == LAYERS
    settings = json.loads((run["out"] / ".llama-factory-run.json").read_text())["settings"]
    assert "checkpointed_layers" not in settings


def test_all_layers_without_the_key_are_all_checkpointed(workspace):
    """The control: the spy sees LLaMA-Factory's own checkpointing of every layer, no launcher line."""
    run = train(workspace, "all", "training.gradientCheckpointing=true")
    assert "checkpointed_layers" not in run["rendered"]
    assert run["checkpointed"] == {i: STEPS for i in range(LAYERS)}, run["checkpointed"]
    assert run["forwards"] == Counter({(i, g): STEPS for i in range(LAYERS) for g in (False, True)}), run["forwards"]
    assert run["launch"] == [] and finished(run["out"]) == STEPS
