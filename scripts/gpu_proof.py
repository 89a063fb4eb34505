#!/usr/bin/env python3
"""Prove on one GPU that the chart's rendered training configs run, and measure
them against the original example's config on the same model, data and GPU.

Two steps, because Helm and the GPU are rarely on one machine:

  render (needs the pinned Helm; no GPU):
    python scripts/gpu_proof.py render --out .gpu/configs [--steps 15]
      renders, for each run in RUNS, the chart's ConfigMap files and DeepSpeedJob
      with the model and data pointed at the synthetic ones under --root, plus
      the original example's sft-8b-config.yaml re-typed (BASELINE).

  run (needs one or more GPUs, no network; Python with torch, LLaMA-Factory 0.9.5,
  DeepSpeed 0.19.8 and liger-kernel):
    python scripts/gpu_proof.py run --configs .gpu/configs --runs baseline,sft --results out.json
      builds a randomly initialised model with the exact Llama-3.1-8B architecture
      (no weights download) and a tokenizer with Llama-3's special tokens, writes
      synthetic SFT (alpaca) and DPO (sharegpt, chosen/rejected) datasets with
      realistic lengths, then runs each training the way the T9k controller runs
      a one-worker DeepSpeedJob (a one-host hostfile and the launcher command
      rebuilt from the rendered spec by chartkit.launcher), merges with the
      export stage's own command, loads the merged model, and writes per run:
      steps, tokens per second, step time, peak GPU memory (the allocator's, as
      LLaMA-Factory records it with RECORD_VRAM=1, and nvidia-smi's), loss curve.

  run options for the worst case (issue 15):
    --cap-gib C      a separate process holds all GPU memory but C GiB (39.5: a 40 GB card, as an
                     A100 40GB leaves a process; 35.55: 90 % of it; 79.5: an 80 GB card), checked
                     by a test allocation in a fresh process before any run
    --runs name@worst  data with every SFT sample and every chosen/rejected sequence at the cutoff
    --runs drills    kill during training, kill during a checkpoint save, relaunch, relaunch after
                     completion (sft-drill), each outcome asserted
    e.g. run --runs sft@worst,dpo@worst,dpo@typical --cap-gib 39.5
         run --runs drills,dpo@worst --cap-gib 35.55
         run --runs sft-80@worst,sft-80-ckpt@worst,dpo-80@worst,dpo-80-ckpt@worst --cap-gib 79.5  (issue 17)
         run --runs sft-40@worst,sft-40-ck4@worst,dpo-40@worst --cap-gib 39.5  (issue 17; results:
             tests/gpu/card-defaults-results.json, docs/gpu-card-defaults.md)
         run --runs sft-40@worst,sft-40-ck4-chart@worst --cap-gib 39.5  (issue 17: partial
             checkpointing as the chart renders and its launcher applies it)
    Runs in RUN_ENV get environment variables and scripts/gpu_proof_site on PYTHONPATH, whose
    sitecustomize.py made a change the chart could not render then (GPU_PROOF_CKPT_LAYERS=K:
    gradient checkpointing of the first K decoder layers only; the chart now renders it as
    training.gradientCheckpointingLayers, applied by files/launch.py).

  plot (matplotlib):
    python scripts/gpu_proof.py plot --results a.json [b.json …] --png tests/gpu/gpu-proof.png
    python scripts/gpu_proof.py plot-worst --results tests/gpu/worst-case-results.json --png tests/gpu/worst-case.png

Measurement-only settings, the same for every run: logging every step,
token counting on, max_steps bounded. Throughput is the
steady state between step WARMUP and the last step.

One file over 400 lines on purpose: a single self-contained device script, run on a GPU
machine from a bare copy of scripts/, whose render, run and plot steps share RUNS and the
measurement code (the offline tests read RUNS, STEPS and CHART_EQUIVALENT from it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MODEL = "Llama-3.1-8B-random"
CONFIG_MOUNT = "/etc/llama-factory"  # where the DeepSpeedJob mounts its ConfigMap
WARMUP = 3  # steps excluded from the steady-state throughput
N_PARAMS = 8_030_261_248  # Llama-3.1-8B

# Llama-3.1-8B's architecture (config.json of meta-llama/Llama-3.1-8B).
LLAMA31_8B = dict(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    hidden_act="silu",
    tie_word_embeddings=False,
    rope_scaling={
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    bos_token_id=128000,
    eos_token_id=128001,
    attention_bias=False,
    mlp_bias=False,
)
SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|finetune_right_pad_id|>",
    "<|python_tag|>",
    "<|eom_id|>",
]

SYNTH_SFT = {"file_name": "synthetic_sft.json"}
SYNTH_DPO = {
    "file_name": "synthetic_dpo.json",
    "ranking": True,
    "formatting": "sharegpt",
    "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
}

# What each run renders: (preset, stage, extra --set-json values). "proof" is the
# chart's default; the others isolate one setting each.
RUNS = {
    "sft": ("values/8b.yaml", "sft", {}),
    "sft-seedlike": (
        "values/8b.yaml",
        "sft",
        {"training.enableLigerKernel": False, "sft.packing": False, "sft.perDeviceTrainBatchSize": 16},
    ),
    "merge-sft": ("values/8b.yaml", "merge-sft", {}),
    "dpo": ("values/8b.yaml", "dpo", {}),
    "merge-dpo": ("values/8b.yaml", "merge-dpo", {}),
    "sft-2xdp": ("values/8b-2xdp.yaml", "sft", {}),
    "sft-2xdp-1gpu": ("values/8b-2xdp.yaml", "sft", {"training.gpusPerWorker": 1}),
    # DPO options for a 40 GB card (issue 15); the same 16 pairs per optimizer step.
    "dpo-2x8": (
        "values/8b.yaml",
        "dpo",
        {"dpo.perDeviceTrainBatchSize": 2, "dpo.gradientAccumulationSteps": 8, "dpo.cutoffLen": 4096, "training.cudaAllocConf": ""},
    ),
    "dpo-1x16": (
        "values/8b.yaml",
        "dpo",
        {"dpo.perDeviceTrainBatchSize": 1, "dpo.gradientAccumulationSteps": 16, "dpo.cutoffLen": 4096, "training.cudaAllocConf": ""},
    ),
    "dpo-1x16-exp": (
        "values/8b.yaml",
        "dpo",
        {"dpo.perDeviceTrainBatchSize": 1, "dpo.gradientAccumulationSteps": 16, "dpo.cutoffLen": 4096},
    ),
    "dpo-2xdp-1gpu": ("values/8b-2xdp.yaml", "dpo", {"training.gpusPerWorker": 1}),
    # Defaults that follow the card (issue 17): the chart's choice for an 80 GB card, and the
    # checkpointing it turns off, for the speed-up; run with --cap-gib 79.5.
    "sft-80": ("values/8b.yaml", "sft", {"common.gpu.memoryGiB": 80}),
    "sft-80-ckpt": ("values/8b.yaml", "sft", {"common.gpu.memoryGiB": 80, "training.gradientCheckpointing": True}),
    "dpo-80": ("values/8b.yaml", "dpo", {"common.gpu.memoryGiB": 80}),
    "dpo-80-ckpt": ("values/8b.yaml", "dpo", {"common.gpu.memoryGiB": 80, "training.gradientCheckpointing": True}),
    # A 40 GB card: the old default (checkpointing on, micro batch 1; the chart's choice until
    # partial checkpointing) and levers beyond checkpointing and the micro batch (issue 17):
    # data-loader workers that build the next packed row's 4D block-diagonal mask (4096 x 4096,
    # on the CPU) while the GPU trains, partial checkpointing (first made by RUN_ENV's hook, now
    # the chart's choice: sft-40-ck4-chart), torch.compile of the model.
    "sft-40": ("values/8b.yaml", "sft", {"common.gpu.memoryGiB": 40, "training.gradientCheckpointing": True}),
    "dpo-40": ("values/8b.yaml", "dpo", {"common.gpu.memoryGiB": 40}),
    "sft-40-nw": (
        "values/8b.yaml",
        "sft",
        {"common.gpu.memoryGiB": 40, "training.gradientCheckpointing": True, "sft.extraArgs.dataloader_num_workers": 4},
    ),
    "sft-40-ck4": ("values/8b.yaml", "sft", {"common.gpu.memoryGiB": 40, "training.gradientCheckpointing": True}),
    "sft-40-ck4-nw": (
        "values/8b.yaml",
        "sft",
        {"common.gpu.memoryGiB": 40, "training.gradientCheckpointing": True, "sft.extraArgs.dataloader_num_workers": 4},
    ),
    # The chart's choice for a 40 GB card since partial checkpointing: the first 4 of 32 decoder
    # layers checkpointed (training.gradientCheckpointingLayers chosen by the card, applied by
    # the chart's launcher, files/launch.py), no hook.
    "sft-40-ck4-chart": ("values/8b.yaml", "sft", {"common.gpu.memoryGiB": 40}),
    "sft-80-nw": ("values/8b.yaml", "sft", {"common.gpu.memoryGiB": 80, "sft.extraArgs.dataloader_num_workers": 4}),
    "sft-80-compile": ("values/8b.yaml", "sft", {"common.gpu.memoryGiB": 80, "sft.extraArgs.torch_compile": True}),
    # Restart drills (issue 15): a checkpoint every 3 steps, no eval, 8 steps.
    "sft-drill": ("values/8b.yaml", "sft", {"sft.saveSteps": 3, "sft.valSize": 0}),
}
# Runs that need the chart's values of a later commit render only when the chart has them.
STEPS = {
    "sft-drill": 8,
    "dpo-80": 3,
    "dpo-80-ckpt": 3,
    "dpo-40": 3,
    "dpo": 3,
    "dpo-2x8": 2,
    "dpo-1x16": 3,
    "dpo-1x16-exp": 3,
    "dpo-2xdp-1gpu": 3,
}
# Runs made with a change the chart could not express when they ran, made in the training process
# by scripts/gpu_proof_site/sitecustomize.py (put on PYTHONPATH for these runs only): partial
# checkpointing before the chart had it (training.gradientCheckpointingLayers, CHART_EQUIVALENT).
RUN_ENV = {"sft-40-ck4": {"GPU_PROOF_CKPT_LAYERS": "4"}, "sft-40-ck4-nw": {"GPU_PROOF_CKPT_LAYERS": "4"}}
# What those runs are in the chart's values today.
CHART_EQUIVALENT = {
    "sft-40-ck4": {"common.gpu.memoryGiB": 40, "training.gradientCheckpointingLayers": 4},
    "sft-40-ck4-nw": {"common.gpu.memoryGiB": 40, "training.gradientCheckpointingLayers": 4, "sft.extraArgs.dataloader_num_workers": 4},
}
SITE = HERE / "gpu_proof_site"

# The original example's llama-factory/training/sft-8b-config.yaml (t9k/examples @ cf203dc),
# re-typed; paths point at the same synthetic model and data as the chart's runs.
BASELINE = {
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "lora_target": "all",
    "dataset": "synthetic_sft",
    "template": "llama3",
    "cutoff_len": 4096,
    "overwrite_cache": True,
    "preprocessing_num_workers": 16,
    "logging_steps": 100,
    "save_steps": 4000,
    "plot_loss": True,
    "overwrite_output_dir": True,
    "per_device_train_batch_size": 16,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1.0e-5,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "bf16": True,
    "ddp_timeout": 180000000,
    "val_size": 0.1,
    "per_device_eval_batch_size": 1,
    "eval_strategy": "steps",
    "eval_steps": 4000,
}


def measurement(steps: int, packed: bool) -> dict:
    # A packed row is one sequence with a block-diagonal 4D mask, so "non_padding" (which
    # sums the attention mask) cannot count it; with one packed row per batch nothing is
    # padded, and "all" counts real tokens.
    return {"logging_steps": 1, "max_steps": steps, "include_num_input_tokens_seen": "all" if packed else "non_padding"}


# ------------------------------------------------------------------ render


def render(args) -> int:
    from chartkit import helm

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    root = args.root
    for name, (preset, stage, extra) in RUNS.items():
        sets = {
            "storage.mountPath": root,
            "model.name": MODEL,
            "stages": [stage],
            "datasets.synthetic_sft": SYNTH_SFT,
            "datasets.synthetic_dpo": SYNTH_DPO,
            "sft.datasets": ["synthetic_sft"],
            "dpo.datasets": ["synthetic_dpo"],
            **extra,
        }
        if stage in ("sft", "dpo"):
            packed = extra.get("sft.packing", True) and stage == "sft"
            for k, v in measurement(STEPS.get(name, args.steps), packed).items():
                key = {"logging_steps": "loggingSteps", "max_steps": "maxSteps"}.get(k)
                if key:
                    sets[f"{stage}.{key}"] = v
                else:
                    sets[f"{stage}.extraArgs.{k}"] = v
        release = helm.Release(values=(preset,), set_json=tuple(f"{k}={json.dumps(v)}" for k, v in sets.items()), name="gpu-proof")
        d = out / name
        try:
            objs = helm.render(release)
        except helm.RenderError as e:
            why = [ln.strip() for ln in e.stderr.splitlines() if ln.strip().startswith("- ")] or [e.stderr.strip()]
            print(f"skipped {name} (the chart refuses it): {why[0][:300]}")
            continue
        d.mkdir(parents=True)
        for obj in objs:
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-config"):
                for key, text in obj["data"].items():
                    (d / key).write_text(text)
            elif obj["kind"] in ("DeepSpeedJob", "Job"):
                (d / "object.json").write_text(json.dumps(obj, indent=1))
        print(f"rendered {name}: {sorted(p.name for p in d.iterdir())}")
    base = dict(
        BASELINE,
        model_name_or_path=f"{root}/models/{MODEL}",
        dataset_dir=CONFIG_MOUNT,
        output_dir=f"{root}/saves/baseline",
        **measurement(args.steps, False),
    )
    (out / "baseline").mkdir()
    (out / "baseline" / "train.yaml").write_text(json.dumps(base, indent=1))  # JSON is YAML
    (out / "baseline" / "dataset_info.json").write_text(
        json.dumps({"synthetic_sft": {"file_name": f"{root}/data/{SYNTH_SFT['file_name']}"}}, indent=1)
    )
    (out / "root").write_text(root)
    return 0


# ------------------------------------------------------------- synthetic data


def build_tokenizer(path: Path, n_words: int = 30000):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "user", "assistant", "system"] + [f"w{i}" for i in range(n_words)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        unk_token="<unk>",
        additional_special_tokens=SPECIALS[2:],
    )
    fast.add_special_tokens({"additional_special_tokens": SPECIALS[2:]})
    fast.save_pretrained(str(path))
    return fast


def lognormal_len(rng: random.Random, median: int, sigma: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(rng.lognormvariate(math.log(median), sigma))))


def text(rng: random.Random, n: int, n_words: int = 30000) -> str:
    # Zipf-like word frequencies, as in natural text.
    return " ".join(f"w{min(int(rng.paretovariate(1.1)) - 1, n_words - 1)}" for _ in range(n))


def write_data(data_dir: Path, n_sft: int = 6000, n_dpo: int = 3000, seed: int = 0) -> dict:
    """Alpaca-like lengths: prompts median 40 words, answers median 180, long tails to ~3,000."""
    rng = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    sft = [
        {
            "instruction": text(rng, lognormal_len(rng, 40, 0.8, 4, 1000)),
            "input": text(rng, lognormal_len(rng, 30, 1.0, 1, 800)) if rng.random() < 0.4 else "",
            "output": text(rng, lognormal_len(rng, 180, 0.9, 8, 3000)),
        }
        for _ in range(n_sft)
    ]
    dpo = [
        {
            "conversations": [{"from": "human", "value": text(rng, lognormal_len(rng, 60, 0.8, 4, 1000))}],
            "chosen": {"from": "gpt", "value": text(rng, lognormal_len(rng, 200, 0.8, 8, 1500))},
            "rejected": {"from": "gpt", "value": text(rng, lognormal_len(rng, 160, 0.8, 8, 1500))},
        }
        for _ in range(n_dpo)
    ]
    (data_dir / SYNTH_SFT["file_name"]).write_text(json.dumps(sft))
    (data_dir / SYNTH_DPO["file_name"]).write_text(json.dumps(dpo))
    words = [len((r["instruction"] + " " + r["input"] + " " + r["output"]).split()) for r in sft]
    return {
        "sft_samples": n_sft,
        "dpo_samples": n_dpo,
        "sft_words_mean": round(sum(words) / len(words)),
        "sft_words_p95": sorted(words)[int(0.95 * len(words))],
    }


def write_worst_data(data_dir: Path, n_sft: int = 240, n_dpo: int = 240, seed: int = 1) -> dict:
    """Every sequence at the cutoff: answers longer than any cutoff the chart allows (5,000
    words, one token each), so LLaMA-Factory truncates each SFT sample, and each chosen and
    each rejected sequence of a pair, to exactly cutoff_len tokens (infer_seqlen keeps the
    short prompt whole and cuts the answer to cutoff - prompt)."""
    rng = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    sft = [{"instruction": text(rng, 50), "input": "", "output": text(rng, 5000)} for _ in range(n_sft)]
    dpo = [
        {
            "conversations": [{"from": "human", "value": text(rng, 60)}],
            "chosen": {"from": "gpt", "value": text(rng, 5000)},
            "rejected": {"from": "gpt", "value": text(rng, 5000)},
        }
        for _ in range(n_dpo)
    ]
    (data_dir / SYNTH_SFT["file_name"]).write_text(json.dumps(sft))
    (data_dir / SYNTH_DPO["file_name"]).write_text(json.dumps(dpo))
    return {"mode": "worst", "sft_samples": n_sft, "dpo_samples": n_dpo, "answer_words": 5000}


def build_model(model_dir: Path) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if (model_dir / "config.json").is_file():
        return {"model": "reused"}
    start = time.time()
    config = LlamaConfig(**LLAMA31_8B, torch_dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(str(model_dir), max_shard_size="5GB")
    del model
    torch.cuda.empty_cache()
    build_tokenizer(model_dir)
    return {"parameters": n, "build_seconds": round(time.time() - start, 1)}


# ----------------------------------------------------------------- running


class SmiSampler(threading.Thread):
    """Peak memory.used of every GPU, as nvidia-smi reports it, sampled every 0.25 s; with a
    card-size cap, the memory of the holder process is left out (what is left is the process
    under test: its CUDA context, allocator, cuBLAS and Triton workspaces, NCCL)."""

    def __init__(self, exclude_mib: int = 0):
        super().__init__(daemon=True)
        self.peak_mib: dict[int, int] = {}
        self.exclude_mib = exclude_mib
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                for line in out.strip().splitlines():
                    i, used = (int(x) for x in line.split(","))
                    used -= self.exclude_mib if i == 0 else 0
                    self.peak_mib[i] = max(self.peak_mib.get(i, 0), used)
            except Exception:
                pass
            self.stop.wait(0.25)


# ------------------------------------------------------------ card-size cap

GIB = 1024**3


def hold(args) -> int:
    """Hold all of GPU 0's memory but --cap-gib, until killed: the process started after this
    one has exactly a card of that size (its own CUDA context included)."""
    import torch

    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    hold_bytes = free - int(args.cap_gib * GIB)
    block = torch.empty(hold_bytes, dtype=torch.uint8, device="cuda")  # noqa: F841 (held)
    torch.cuda.synchronize()
    free_after, _ = torch.cuda.mem_get_info()
    print(
        json.dumps(
            {"held_gib": round(hold_bytes / GIB, 3), "free_after_gib": round(free_after / GIB, 3), "total_gib": round(total / GIB, 3)}
        ),
        flush=True,
    )
    signal_wait = threading.Event()
    signal_wait.wait()
    return 0


def capcheck(args) -> int:
    """The test allocation: in a fresh process, the largest block that fits must be the cap minus
    this process's CUDA context, within 0.5 GiB; one 0.5 GiB above that must fail."""
    import torch

    torch.cuda.init()
    free, _ = torch.cuda.mem_get_info()
    ok = torch.empty(free - GIB // 2, dtype=torch.uint8, device="cuda")
    del ok
    torch.cuda.empty_cache()
    try:
        torch.empty(free + GIB // 2, dtype=torch.uint8, device="cuda")
        over = "allocated"
    except torch.OutOfMemoryError:
        over = "refused"
    print(json.dumps({"free_gib": round(free / GIB, 3), "alloc_free_minus_0.5": "allocated", "alloc_free_plus_0.5": over}), flush=True)
    return 0 if over == "refused" else 1


class Cap:
    """Start the holder, check the cap with a test allocation, stop the holder on exit."""

    def __init__(self, cap_gib: float):
        self.cap_gib = cap_gib
        self.proc = None
        self.info: dict = {"cap_gib": cap_gib}

    def __enter__(self):
        if not self.cap_gib:
            return self
        me = [sys.executable, str(Path(__file__).resolve())]
        self.proc = subprocess.Popen(me + ["hold", "--cap-gib", str(self.cap_gib)], stdout=subprocess.PIPE, text=True)
        self.info["holder"] = json.loads(self.proc.stdout.readline())
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"], capture_output=True, text=True
        ).stdout
        self.info["holder_used_mib"] = int(smi.strip())
        chk = subprocess.run(me + ["capcheck"], capture_output=True, text=True)
        self.info["check"] = json.loads(chk.stdout.strip().splitlines()[-1])
        if chk.returncode != 0:
            raise SystemExit(f"card-size cap not in force: {self.info}")
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.kill()
            self.proc.wait()


def materialise(run_dir: Path, work: Path) -> Path:
    """The ConfigMap mounted where the DeepSpeedJob mounts it: files copied with the mount path replaced."""
    cfg = work / "mounts" / run_dir.name
    cfg.mkdir(parents=True, exist_ok=True)
    for f in run_dir.iterdir():
        if f.name != "object.json":
            (cfg / f.name).write_text(f.read_text().replace(CONFIG_MOUNT, str(cfg)))
    return cfg


def read_log(output_dir: Path) -> list[dict]:
    path = output_dir / "trainer_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def summarise(name: str, log: list[dict], seconds: float, smi: SmiSampler, rc: int, cmd: list[str], stage: str | None = None) -> dict:
    steps = [r for r in log if "loss" in r]
    res = {"run": name, "returncode": rc, "command": cmd, "wall_seconds": round(seconds, 1), "steps": len(steps), "stage": stage}
    warmup = min(WARMUP, len(steps) - 2)  # short worst-case runs: all but the first step
    if warmup >= 1:
        a, b = steps[warmup], steps[-1]
        # LLaMA-Factory logs throughput = tokens seen / seconds since training began, so
        # tokens / throughput is each step's time to the millisecond (elapsed_time is h:mm:ss).
        if "total_tokens" in b and a.get("throughput") and b.get("throughput"):
            dt = b["total_tokens"] / b["throughput"] - a["total_tokens"] / a["throughput"]
            n = b["current_steps"] - a["current_steps"]
            res["step_seconds"] = round(dt / n, 3)
            res["tokens_per_second"] = round((b["total_tokens"] - a["total_tokens"]) / dt, 1)
            res["tokens_per_step"] = round((b["total_tokens"] - a["total_tokens"]) / n)
            # Model FLOPs of LoRA training: 2N forward + 2N for the input gradients per token
            # (frozen weights get no weight gradients; recomputation is not useful work;
            # attention's sequence-length term left out), against 790 TFLOP/s of dense bf16,
            # a realistic H200 rate (989 peak).
            res["mfu_4N_of_790_tflops"] = round(res["tokens_per_second"] * 4 * N_PARAMS / 790e12, 3)
            # DPO also runs the reference model's forward (the base model, adapters off) on
            # every token: 6N per token.
            if res.get("stage") == "dpo":
                res["mfu_6N_of_790_tflops"] = round(res["tokens_per_second"] * 6 * N_PARAMS / 790e12, 3)
    res["peak_allocated_gib"] = max((r.get("vram_allocated", 0) for r in log), default=None)
    res["peak_reserved_gib"] = max((r.get("vram_reserved", 0) for r in log), default=None)
    res["nvidia_smi_peak_gib"] = {str(i): round(m / 1024, 2) for i, m in smi.peak_mib.items()}
    res["loss"] = [[r["current_steps"], r["loss"]] for r in steps]
    res["log"] = log
    return res


def container_env(obj: dict) -> dict:
    """The plain-valued environment of the rendered container (e.g. PYTORCH_CUDA_ALLOC_CONF)."""
    from chartkit.pipeline import pod_spec

    return {
        e["name"]: e["value"]
        for e in pod_spec(obj)["containers"][0].get("env", [])
        if "value" in e and e["name"] not in ("HOME", "HF_HOME")
    }


def run_training(name: str, configs: Path, work: Path, timeout: int, exclude_mib: int = 0) -> dict:
    from chartkit import launcher

    run_dir = configs / name
    env = {**os.environ, "RECORD_VRAM": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    if name == "baseline":
        cfg_dir = materialise(run_dir, work)
        cfg = json.loads((cfg_dir / "train.yaml").read_text())
        cmd = ["llamafactory-cli", "train", str(cfg_dir / "train.yaml")]  # as the seed's job ran it
        output = Path(cfg["output_dir"])
        stage = cfg["stage"]
    else:
        obj = json.loads((run_dir / "object.json").read_text())
        env.update(container_env(obj))
        cfg_dir = materialise(run_dir, work)
        import yaml

        train_cfg = yaml.safe_load((cfg_dir / "train.yaml").read_text())
        stage = train_cfg["stage"]
        output = Path(train_cfg["output_dir"])
        model_dir = Path(train_cfg["model_name_or_path"])
        if not model_dir.exists():
            # DPO trains on the merged SFT model; without a merge-sft in this call it gets the
            # base model under that name (the same architecture, random weights either way).
            model_dir.symlink_to(model_dir.parent / MODEL)
        hostfile = work / "hostfile"
        hostfile.write_text(launcher.hostfile(obj, hosts=["localhost"]))
        run_spec = obj["spec"]["config"]["run"]
        for kind in run_spec:
            run_spec[kind] = [a.replace(CONFIG_MOUNT, str(cfg_dir)) for a in run_spec[kind]]
        cmd = launcher.command(obj, str(hostfile))
    if name in RUN_ENV:
        env.update(RUN_ENV[name])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE), env.get("PYTHONPATH")) if p)
    if output.exists():
        shutil.rmtree(output)
    log_file = work / f"{name}.log"
    smi = SmiSampler(exclude_mib)
    smi.start()
    start = time.time()
    with open(log_file, "w") as lf:
        # Its own process group, as a pod's processes are: a timeout kills the launcher's ranks too.
        proc = subprocess.Popen(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = -9
    smi.stop.set()
    res = summarise(name, read_log(output), time.time() - start, smi, rc, cmd, stage)
    res["env"] = {k: v for k, v in env.items() if k.startswith(("PYTORCH_", "GPU_PROOF_"))}
    text = log_file.read_text(errors="replace")
    res["patch_lines"] = [ln for ln in text.splitlines() if "gpu_proof partial checkpointing" in ln or "llama-factory-launch: rank" in ln][
        :4
    ]
    res["config"] = (
        {
            k: train_cfg.get(k)
            for k in (
                "disable_gradient_checkpointing",
                "checkpointed_layers",
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "cutoff_len",
                "neat_packing",
                "enable_liger_kernel",
                "flash_attn",
                "dataloader_num_workers",
                "torch_compile",
            )
        }
        if name != "baseline"
        else {}
    )
    if rc != 0:
        tail = log_file.read_text()
        res["log_tail"] = tail[-3000:]
        m = re.findall(r"(CUDA out of memory\. Tried to allocate [^.]*\.[^.]*\.)", tail)
        res["oom"] = m[-1] if m else None
    return res


def run_export(name: str, configs: Path, work: Path, timeout: int) -> dict:
    import yaml

    cfg_dir = materialise(configs / name, work)
    cfg = yaml.safe_load((cfg_dir / "merge.yaml").read_text())
    obj = json.loads((configs / name / "object.json").read_text())
    command = obj["spec"]["template"]["spec"]["containers"][0]["command"]
    cmd = [c.replace(CONFIG_MOUNT, str(cfg_dir)) for c in command]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    res = {"run": name, "returncode": proc.returncode, "command": cmd, "wall_seconds": round(time.time() - start, 1)}
    if proc.returncode != 0:
        res["log_tail"] = (proc.stdout + proc.stderr)[-3000:]
        return res
    # The merged model must load and generate.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    export = Path(cfg["export_dir"])
    res["export_files"] = sorted(p.name for p in export.iterdir())
    model = AutoModelForCausalLM.from_pretrained(str(export), torch_dtype=torch.bfloat16, device_map="cuda")
    tok = AutoTokenizer.from_pretrained(str(export))
    ids = tok("w1 w2 w3", return_tensors="pt").input_ids.to("cuda")
    out = model.generate(ids, max_new_tokens=2, do_sample=False)
    res["loaded"] = True
    res["generated_tokens"] = int(out.shape[1] - ids.shape[1])
    del model
    torch.cuda.empty_cache()
    return res


def run(args) -> int:
    """Runs are `name` (typical data) or `name@worst` (every sequence at the cutoff)."""
    configs = Path(args.configs)
    root = Path((configs / "root").read_text())
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d"), "runs": [], "argv": sys.argv}
    results["gpu"] = (
        subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True, text=True)
        .stdout.strip()
        .splitlines()
    )
    results["versions"] = versions()
    results["model"] = build_model(root / "models" / MODEL)

    def save():
        Path(args.results).write_text(json.dumps(results, indent=1))

    with Cap(args.cap_gib) as cap:
        results["cap"] = cap.info
        exclude = cap.info.get("holder_used_mib", 0)
        save()
        mode = None
        for spec in args.runs.split(","):
            name, _, want = spec.partition("@")
            want = want or "typical"
            if want != mode:
                results.setdefault("data", {})[want] = (write_worst_data if want == "worst" else write_data)(root / "data")
                mode = want
            budget = int(args.deadline - time.time())
            if budget < 60:
                results["runs"].append({"run": name, "data": want, "skipped": "deadline"})
                continue
            if name == "drills":
                res = {"run": "drills", **run_drills(configs, work, args.deadline)}
                res["returncode"] = 0 if res["ok"] else 1
            elif name.startswith("merge-"):
                res = run_export(name, configs, work, budget)
            else:
                res = run_training(name, configs, work, budget, exclude)
            res["data"] = want
            res["cap_gib"] = args.cap_gib
            results["runs"].append(res)
            save()
            short = {k: v for k, v in res.items() if k not in ("loss", "command", "log_tail", "log")}
            print(json.dumps(short), flush=True)
            if res["returncode"] != 0:
                print(res.get("log_tail", "")[-1500:], flush=True)
    save()
    return 0


# ------------------------------------------------------------------ drills


def _launch(cmd: list[str], env: dict, log_file: Path) -> subprocess.Popen:
    lf = open(log_file, "w")
    return subprocess.Popen(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(root.rglob("*")) if p.is_file()}


def run_drills(configs: Path, work: Path, deadline: float) -> dict:
    """Kill during training, kill during a checkpoint save, relaunch after completion: each run
    with the DeepSpeedJob's own command (the chart's launch.py first), each outcome asserted."""
    import importlib.util

    import yaml

    from chartkit import launcher

    spec = importlib.util.spec_from_file_location("chart_launch", HERE.parent / "files" / "launch.py")
    cl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cl)

    name = "sft-drill"
    run_dir = configs / name
    obj = json.loads((run_dir / "object.json").read_text())
    cfg_dir = materialise(run_dir, work)
    cfg = yaml.safe_load((cfg_dir / "train.yaml").read_text())
    out = Path(cfg["output_dir"])
    if out.exists():
        shutil.rmtree(out)
    run_spec = obj["spec"]["config"]["run"]
    for kind in run_spec:
        run_spec[kind] = [a.replace(CONFIG_MOUNT, str(cfg_dir)) for a in run_spec[kind]]
    hostfile = work / "hostfile"
    hostfile.write_text(launcher.hostfile(obj, hosts=["localhost"]))
    cmd = launcher.command(obj, str(hostfile))
    env = {
        **os.environ,
        "RECORD_VRAM": "1",
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        **container_env(obj),
    }
    save_steps, max_steps = cfg["save_steps"], cfg["max_steps"]
    first, second = out / f"checkpoint-{save_steps}", out / f"checkpoint-{2 * save_steps}"
    res = {"command": cmd, "save_steps": save_steps, "max_steps": max_steps, "save_total_limit": cfg.get("save_total_limit"), "drills": []}

    def status(c: Path) -> str:
        return cl.checkpoint_status(c, True) if c.is_dir() else "absent"

    def wait(proc, until, timeout):
        end = min(time.time() + timeout, deadline)
        while time.time() < end:
            if until():
                return True
            if proc.poll() is not None:
                return until()
            time.sleep(0.002)
        return False

    def kill(proc):
        os.killpg(proc.pid, 9)
        proc.wait()

    # 1. Kill the whole process group during training, after the first checkpoint is complete.
    log1 = work / "drill-1.log"
    t = time.time()
    p = _launch(cmd, env, log1)
    hit = wait(p, lambda: status(first) == "complete" and any(r.get("current_steps", 0) > save_steps for r in read_log(out)), 400)
    kill(p)
    losses1 = {r["current_steps"]: r["loss"] for r in read_log(out) if "loss" in r}
    d1 = {
        "drill": "kill during training",
        "seconds": round(time.time() - t, 1),
        "killed_after_step": max(losses1, default=0),
        "first_checkpoint": status(first),
        "finished": cl.finished(out),
    }
    d1["ok"] = bool(hit and d1["first_checkpoint"] == "complete" and not d1["finished"])
    res["drills"].append(d1)

    # 2. Relaunch: it must resume from the first checkpoint; kill it while the second is being saved.
    log2 = work / "drill-2.log"
    t = time.time()
    p = _launch(cmd, env, log2)
    hit = wait(p, lambda: second.is_dir() and status(second) != "complete", 400)
    at_kill = status(second)
    kill(p)
    text2 = log2.read_text()
    d2 = {
        "drill": "kill during a checkpoint save",
        "seconds": round(time.time() - t, 1),
        "resumed_from": re.findall(r"llama-factory-launch: resuming from (\S+)", text2),
        "second_checkpoint_at_kill": at_kill,
        "second_checkpoint_after_kill": status(second),
        "files_of_second_at_kill": sorted(str(f.relative_to(second)) for f in second.rglob("*")) if second.is_dir() else [],
    }
    d2["ok"] = bool(hit and d2["resumed_from"] == [str(first)] and d2["second_checkpoint_after_kill"] != "complete")
    res["drills"].append(d2)

    # 3. Relaunch: the incomplete checkpoint is set aside, training resumes from the complete one
    #    and finishes; the loss of the steps trained twice matches the first run's.
    log3 = work / "drill-3.log"
    t = time.time()
    p = _launch(cmd, env, log3)
    try:
        rc = p.wait(timeout=max(60, deadline - time.time()))
    except subprocess.TimeoutExpired:
        kill(p)
        rc = -9
    text3 = log3.read_text()
    state = json.loads((out / "trainer_state.json").read_text()) if (out / "trainer_state.json").is_file() else {}
    losses3 = {r["current_steps"]: r["loss"] for r in read_log(out) if "loss" in r}
    common = sorted(set(losses1) & set(losses3) - set(range(save_steps + 1)))
    ckpts = sorted(c.name for c in out.glob("checkpoint-*"))
    d3 = {
        "drill": "relaunch after the kill during a save",
        "seconds": round(time.time() - t, 1),
        "returncode": rc,
        "set_aside": re.findall(r"setting aside incomplete (\S+)", text3),
        "resumed_from": re.findall(r"llama-factory-launch: resuming from (\S+)", text3),
        "global_step": state.get("global_step"),
        "finished": cl.finished(out),
        "checkpoints": ckpts,
        "loss_first_run_vs_resumed": {s: [losses1[s], losses3[s]] for s in common},
    }
    d3["ok"] = bool(
        rc == 0
        and d3["set_aside"] == [second.name]
        and d3["resumed_from"] == [str(first)]
        and d3["global_step"] == max_steps
        and d3["finished"]
        and len(ckpts) <= (cfg.get("save_total_limit") or 10**9)
        and all(abs(a - b) <= 0.02 * abs(a) for a, b in d3["loss_first_run_vs_resumed"].values())
    )
    res["drills"].append(d3)

    # 4. Relaunch after completion: exit 0 at once, nothing on the PVC changes.
    before = _snapshot(out)
    log4 = work / "drill-4.log"
    t = time.time()
    p = _launch(cmd, env, log4)
    try:
        rc = p.wait(timeout=300)
    except subprocess.TimeoutExpired:
        kill(p)
        rc = -9
    text4 = log4.read_text()
    after = _snapshot(out)
    d4 = {
        "drill": "relaunch after completion",
        "seconds": round(time.time() - t, 1),
        "returncode": rc,
        "skip_lines": [l for l in text4.splitlines() if "llama-factory-launch: skip" in l][:1],
        "files": len(before),
        "unchanged": before == after,
        "trained": "Running training" in text4 or "***** Running" in text4,
    }
    d4["ok"] = bool(rc == 0 and d4["skip_lines"] and d4["unchanged"] and not d4["trained"])
    res["drills"].append(d4)
    for i, f in enumerate((log1, log2, log3, log4), 1):
        res[f"log_{i}_launch_lines"] = [l for l in f.read_text().splitlines() if "llama-factory-launch" in l][:6]
    res["ok"] = all(d["ok"] for d in res["drills"])
    return res


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "llamafactory", "deepspeed", "peft", "trl", "liger-kernel", "accelerate", "datasets"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


# -------------------------------------------------------------------- plot


def plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for f in args.results for r in json.loads(Path(f).read_text())["runs"] if r.get("loss")]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.5))
    names = [r["run"] for r in runs]
    ax1.bar(names, [r.get("tokens_per_second", 0) for r in runs], color="tab:blue")
    ax1.set_ylabel("tokens / s (steady state)")
    ax2.bar(names, [r.get("peak_allocated_gib") or 0 for r in runs], color="tab:orange", label="allocator peak")
    ax2.bar(
        names,
        [max(map(float, r.get("nvidia_smi_peak_gib", {"0": 0}).values())) for r in runs],
        fill=False,
        edgecolor="black",
        label="nvidia-smi peak",
    )
    ax2.set_ylabel("GiB per GPU")
    ax2.legend()
    for r in runs:
        xs, ys = zip(*r["loss"])
        ax3.plot(xs, ys, label=r["run"])
    ax3.set_xlabel("step")
    ax3.set_ylabel("training loss")
    ax3.legend()
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")
    return 0


def plot_worst(args) -> int:
    """Worst-case memory per run against the card-size cap it ran under (tests/gpu/worst-case.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = json.loads(Path(args.results).read_text())
    rows = [(c["cap"]["cap_gib"], r) for c in d["calls"] for r in c["runs"] if r["run"] != "drills"]
    labels = [f"{r['run']}\n{r['data']}, cap {cap}" for cap, r in rows]
    x = range(len(rows))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(16, 5), gridspec_kw={"width_ratios": [3, 2]})
    proc = [max(map(float, r.get("nvidia_smi_peak_gib", {"0": 0}).values())) for _, r in rows]
    ax1.bar([i - 0.27 for i in x], [r.get("peak_allocated_gib") or 0 for _, r in rows], 0.27, label="allocator peak")
    ax1.bar(list(x), [r.get("peak_reserved_gib") or 0 for _, r in rows], 0.27, label="reserved peak")
    ax1.bar([i + 0.27 for i in x], proc, 0.27, label="process (nvidia-smi)")
    for i, (cap, r) in enumerate(rows):
        ax1.hlines(cap, i - 0.45, i + 0.45, colors="red")
        if r.get("oom"):
            ax1.text(i, 2, "out of\nmemory", ha="center", color="red")
    ax1.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=8)
    ax1.set_ylabel("GiB (red: the cap the run had)")
    ax1.legend(loc="upper left")
    ok = [(l, r) for l, (_, r) in zip(labels, rows) if r.get("tokens_per_second")]
    ax2.barh([l for l, _ in ok], [r["tokens_per_second"] for _, r in ok], color="tab:blue")
    ax2.set_xlabel("tokens / s")
    ax2.tick_params(axis="y", labelsize=8)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--out", default=".gpu/configs")
    r.add_argument("--root", default="/tmp/llf", help="the PVC mount path on the GPU machine")
    r.add_argument("--steps", type=int, default=15)
    g = sub.add_parser("run")
    g.add_argument("--configs", default=".gpu/configs")
    g.add_argument("--work", default="/tmp/llf-work")
    g.add_argument("--runs", default="baseline,sft,merge-sft,dpo")
    g.add_argument("--results", default="gpu-proof.json")
    g.add_argument("--deadline", type=float, default=time.time() + 3600, help="epoch seconds to stop by")
    g.add_argument(
        "--cap-gib", type=float, default=0.0, help="leave the runs exactly this much GPU memory (a 40 GB card: 39.5), holding the rest"
    )
    w = sub.add_parser("plot-worst")
    w.add_argument("--results", required=True)
    w.add_argument("--png", required=True)
    w.add_argument(
        "--title", default="Worst case (every sequence at the cutoff) under a card-size cap, 1 x H200, Llama-3.1-8B architecture, LoRA"
    )
    h = sub.add_parser("hold")
    h.add_argument("--cap-gib", type=float, required=True)
    sub.add_parser("capcheck")
    p = sub.add_parser("plot")
    p.add_argument("--results", nargs="+", required=True)
    p.add_argument("--png", required=True)
    p.add_argument("--title", default="LLaMA-Factory 0.9.5, Llama-3.1-8B architecture (random weights), LoRA")
    args = ap.parse_args(argv)
    return {"render": render, "run": run, "plot": plot, "plot-worst": plot_worst, "hold": hold, "capcheck": capcheck}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
