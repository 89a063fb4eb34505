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

  plot (matplotlib):
    python scripts/gpu_proof.py plot --results a.json [b.json …] --png tests/gpu/gpu-proof.png

Measurement-only settings, the same for every run: logging every step,
token counting on, max_steps bounded. Throughput is the
steady state between step WARMUP and the last step.
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

# Llama-3.1-8B's architecture (config.json of meta-llama/Llama-3.1-8B).
LLAMA31_8B = dict(
    vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
    rope_theta=500000.0, rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False,
    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192},
    bos_token_id=128000, eos_token_id=128001, attention_bias=False, mlp_bias=False,
)
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
            "<|finetune_right_pad_id|>", "<|python_tag|>", "<|eom_id|>"]

SYNTH_SFT = {"file_name": "synthetic_sft.json"}
SYNTH_DPO = {"file_name": "synthetic_dpo.json", "ranking": True, "formatting": "sharegpt",
             "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}}

# What each run renders: (preset, stage, extra --set-json values). "proof" is the
# chart's default; the others isolate one setting each.
RUNS = {
    "sft": ("values/8b.yaml", "sft", {}),
    "sft-seedlike": ("values/8b.yaml", "sft", {"training.enableLigerKernel": False, "sft.packing": False,
                                                "sft.perDeviceTrainBatchSize": 16}),
    "merge-sft": ("values/8b.yaml", "merge-sft", {}),
    "dpo": ("values/8b.yaml", "dpo", {}),
    "merge-dpo": ("values/8b.yaml", "merge-dpo", {}),
    "sft-2xdp": ("values/8b-2xdp.yaml", "sft", {}),
    "sft-2xdp-1gpu": ("values/8b-2xdp.yaml", "sft", {"training.gpusPerWorker": 1}),
}

# The original example's llama-factory/training/sft-8b-config.yaml (t9k/examples @ cf203dc),
# re-typed; paths point at the same synthetic model and data as the chart's runs.
BASELINE = {
    "stage": "sft", "do_train": True, "finetuning_type": "lora", "lora_target": "all",
    "dataset": "synthetic_sft", "template": "llama3", "cutoff_len": 4096, "overwrite_cache": True,
    "preprocessing_num_workers": 16, "logging_steps": 100, "save_steps": 4000, "plot_loss": True,
    "overwrite_output_dir": True, "per_device_train_batch_size": 16, "gradient_accumulation_steps": 1,
    "learning_rate": 1.0e-5, "num_train_epochs": 3.0, "lr_scheduler_type": "cosine", "warmup_ratio": 0.1,
    "bf16": True, "ddp_timeout": 180000000, "val_size": 0.1, "per_device_eval_batch_size": 1,
    "eval_strategy": "steps", "eval_steps": 4000,
}


def measurement(steps: int, packed: bool) -> dict:
    # A packed row is one sequence with a block-diagonal 4D mask, so "non_padding" (which
    # sums the attention mask) cannot count it; with one packed row per batch nothing is
    # padded, and "all" counts real tokens.
    return {"logging_steps": 1, "max_steps": steps,
            "include_num_input_tokens_seen": "all" if packed else "non_padding"}


# ------------------------------------------------------------------ render

def render(args) -> int:
    from chartkit import helm

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    root = args.root
    for name, (preset, stage, extra) in RUNS.items():
        sets = {"storage.mountPath": root, "model.name": MODEL, "stages": [stage],
                "datasets.synthetic_sft": SYNTH_SFT, "datasets.synthetic_dpo": SYNTH_DPO,
                "sft.datasets": ["synthetic_sft"], "dpo.datasets": ["synthetic_dpo"], **extra}
        if stage in ("sft", "dpo"):
            packed = extra.get("sft.packing", True) and stage == "sft"
            for k, v in measurement(args.steps, packed).items():
                key = {"logging_steps": "loggingSteps", "max_steps": "maxSteps"}.get(k)
                if key:
                    sets[f"{stage}.{key}"] = v
                else:
                    sets[f"{stage}.extraArgs.{k}"] = v
        release = helm.Release(values=(preset,), set_json=tuple(f"{k}={json.dumps(v)}" for k, v in sets.items()),
                               name="gpu-proof")
        d = out / name
        d.mkdir(parents=True)
        for obj in helm.render(release):
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-config"):
                for key, text in obj["data"].items():
                    (d / key).write_text(text)
            elif obj["kind"] in ("DeepSpeedJob", "Job"):
                (d / "object.json").write_text(json.dumps(obj, indent=1))
        print(f"rendered {name}: {sorted(p.name for p in d.iterdir())}")
    base = dict(BASELINE, model_name_or_path=f"{root}/models/{MODEL}", dataset_dir=CONFIG_MOUNT,
                output_dir=f"{root}/saves/baseline", **measurement(args.steps, False))
    (out / "baseline").mkdir()
    (out / "baseline" / "train.yaml").write_text(json.dumps(base, indent=1))  # JSON is YAML
    (out / "baseline" / "dataset_info.json").write_text(json.dumps(
        {"synthetic_sft": {"file_name": f"{root}/data/{SYNTH_SFT['file_name']}"}}, indent=1))
    (out / "root").write_text(root)
    return 0


# ------------------------------------------------------------- synthetic data

def build_tokenizer(path: Path, n_words: int = 30000):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "user", "assistant", "system"] + [f"w{i}" for i in range(n_words)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>",
                                   eos_token="<|end_of_text|>", unk_token="<unk>",
                                   additional_special_tokens=SPECIALS[2:])
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
    sft = [{"instruction": text(rng, lognormal_len(rng, 40, 0.8, 4, 1000)),
            "input": text(rng, lognormal_len(rng, 30, 1.0, 1, 800)) if rng.random() < 0.4 else "",
            "output": text(rng, lognormal_len(rng, 180, 0.9, 8, 3000))} for _ in range(n_sft)]
    dpo = [{"conversations": [{"from": "human", "value": text(rng, lognormal_len(rng, 60, 0.8, 4, 1000))}],
            "chosen": {"from": "gpt", "value": text(rng, lognormal_len(rng, 200, 0.8, 8, 1500))},
            "rejected": {"from": "gpt", "value": text(rng, lognormal_len(rng, 160, 0.8, 8, 1500))}}
           for _ in range(n_dpo)]
    (data_dir / SYNTH_SFT["file_name"]).write_text(json.dumps(sft))
    (data_dir / SYNTH_DPO["file_name"]).write_text(json.dumps(dpo))
    words = [len((r["instruction"] + " " + r["input"] + " " + r["output"]).split()) for r in sft]
    return {"sft_samples": n_sft, "dpo_samples": n_dpo, "sft_words_mean": round(sum(words) / len(words)),
            "sft_words_p95": sorted(words)[int(0.95 * len(words))]}


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
    """Peak memory.used of every GPU, as nvidia-smi reports it, sampled every 0.5 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                for line in out.strip().splitlines():
                    i, used = (int(x) for x in line.split(","))
                    self.peak_mib[i] = max(self.peak_mib.get(i, 0), used)
            except Exception:
                pass
            self.stop.wait(0.5)


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


def summarise(name: str, log: list[dict], seconds: float, smi: SmiSampler, rc: int, cmd: list[str]) -> dict:
    steps = [r for r in log if "loss" in r]
    res = {"run": name, "returncode": rc, "command": cmd, "wall_seconds": round(seconds, 1), "steps": len(steps)}
    if len(steps) > WARMUP + 1:
        a, b = steps[WARMUP], steps[-1]
        # LLaMA-Factory logs throughput = tokens seen / seconds since training began, so
        # tokens / throughput is each step's time to the millisecond (elapsed_time is h:mm:ss).
        if "total_tokens" in b and a.get("throughput") and b.get("throughput"):
            dt = b["total_tokens"] / b["throughput"] - a["total_tokens"] / a["throughput"]
            n = b["current_steps"] - a["current_steps"]
            res["step_seconds"] = round(dt / n, 3)
            res["tokens_per_second"] = round((b["total_tokens"] - a["total_tokens"]) / dt, 1)
            res["tokens_per_step"] = round((b["total_tokens"] - a["total_tokens"]) / n)
    res["peak_allocated_gib"] = max((r.get("vram_allocated", 0) for r in log), default=None)
    res["peak_reserved_gib"] = max((r.get("vram_reserved", 0) for r in log), default=None)
    res["nvidia_smi_peak_gib"] = {str(i): round(m / 1024, 2) for i, m in smi.peak_mib.items()}
    res["loss"] = [[r["current_steps"], r["loss"]] for r in steps]
    res["log"] = log
    return res


def run_training(name: str, configs: Path, work: Path, timeout: int) -> dict:
    from chartkit import launcher

    run_dir = configs / name
    env = {**os.environ, "RECORD_VRAM": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    if name == "baseline":
        cfg_dir = materialise(run_dir, work)
        cfg = json.loads((cfg_dir / "train.yaml").read_text())
        cmd = ["llamafactory-cli", "train", str(cfg_dir / "train.yaml")]  # as the seed's job ran it
        output = Path(cfg["output_dir"])
    else:
        obj = json.loads((run_dir / "object.json").read_text())
        cfg_dir = materialise(run_dir, work)
        import yaml

        output = Path(yaml.safe_load((cfg_dir / "train.yaml").read_text())["output_dir"])
        hostfile = work / "hostfile"
        hostfile.write_text(launcher.hostfile(obj, hosts=["localhost"]))
        module = obj["spec"]["config"]["run"]["module"]
        obj["spec"]["config"]["run"]["module"] = [module[0], module[1].replace(CONFIG_MOUNT, str(cfg_dir))]
        cmd = launcher.command(obj, str(hostfile))
    if output.exists():
        shutil.rmtree(output)
    log_file = work / f"{name}.log"
    smi = SmiSampler()
    smi.start()
    start = time.time()
    with open(log_file, "w") as lf:
        try:
            rc = subprocess.run(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -9
    smi.stop.set()
    res = summarise(name, read_log(output), time.time() - start, smi, rc, cmd)
    if rc != 0:
        res["log_tail"] = log_file.read_text()[-3000:]
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
    configs = Path(args.configs)
    root = Path((configs / "root").read_text())
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d"), "runs": []}
    results["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                    capture_output=True, text=True).stdout.strip().splitlines()
    results["model"] = build_model(root / "models" / MODEL)
    results["data"] = write_data(root / "data")

    def save():
        Path(args.results).write_text(json.dumps(results, indent=1))

    save()
    for name in args.runs.split(","):
        budget = max(60, int(args.deadline - time.time()))
        res = run_export(name, configs, work, budget) if name.startswith("merge-") else run_training(
            name, configs, work, budget)
        results["runs"].append(res)
        save()
        short = {k: v for k, v in res.items() if k not in ("loss", "command", "log_tail", "log")}
        print(json.dumps(short), flush=True)
        if res["returncode"] != 0:
            print(res.get("log_tail", ""), flush=True)
    return 0


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
    ax2.bar(names, [max(map(float, r.get("nvidia_smi_peak_gib", {"0": 0}).values())) for r in runs], fill=False,
            edgecolor="black", label="nvidia-smi peak")
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
    p = sub.add_parser("plot")
    p.add_argument("--results", nargs="+", required=True)
    p.add_argument("--png", required=True)
    p.add_argument("--title", default="LLaMA-Factory 0.9.5, Llama-3.1-8B architecture (random weights), LoRA")
    args = ap.parse_args(argv)
    return {"render": render, "run": run, "plot": plot}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
