"""The seed's settings (reference/t9k/examples/llama-factory-at-cf203dc, re-typed
here, its shared keys in scripts/gpu_proof.py) are what the 8B presets render,
except where the seed is wrong (paths, the DeepSpeed file of the 1-GPU job,
host memory) — those are checked too."""

import pytest

import gpu_proof
from chartkit import helm, pipeline
from chartkit.pipeline import pod_spec
from harness.testkit import one, rel, render

# Keys every seed training config shares (sft-8b-config.yaml, dpo-8b-config.yaml, …): the seed's
# SFT config, re-typed once in scripts/gpu_proof.py (BASELINE, the GPU runs' baseline), less the
# keys that differ between the seed's configs.
PER_CONFIG = {
    "stage",
    "dataset",
    "learning_rate",
    "save_steps",
    "eval_steps",
    "per_device_train_batch_size",
    "overwrite_output_dir",
}
COMMON = {k: v for k, v in gpu_proof.BASELINE.items() if k not in PER_CONFIG}
# The chart's SFT default packs samples into rows (sft.packing, one row ≈ the seed's 16
# samples): measured on a GPU (tests/gpu/) to be faster at less memory. Everything else is
# the seed's; test_seed_batch_is_one_setting_away checks the seed's exact batch settings.
PACKED = {"per_device_train_batch_size": 1, "neat_packing": True}
# overwrite_output_dir: the seed's true would let a re-run destroy a finished adapter; the chart
# keeps it false (resume or refuse) unless training.overwriteOutputDir is set.
# DPO: the seed's 16 pairs per GPU ran out of memory on a 141 GB H200 (tests/gpu/), and 2 pairs
# of 4096 tokens on its 40 GB card (tests/gpu/worst-case-results.json); 1 pair × 16 accumulation
# steps keep its 16 pairs per optimizer step and GPU, and pairs are cut at 3072 tokens so that
# the worst case keeps 10 % of the card free (README "Worst-case memory").
DPO_BATCH = {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 16, "cutoff_len": 3072}
SEED = {
    ("8b.yaml", "sft"): {
        **COMMON,
        **PACKED,
        "stage": "sft",
        "dataset": "identity,alpaca_gpt4_en,alpaca_gpt4_zh",
        "learning_rate": 1.0e-5,
        "save_steps": 4000,
        "eval_steps": 4000,
    },
    ("8b-2xdp.yaml", "sft"): {
        **COMMON,
        **PACKED,
        "stage": "sft",
        "dataset": "identity,alpaca_gpt4_en,alpaca_gpt4_zh",
        "learning_rate": 1.0e-5,
        "save_steps": 2000,
        "eval_steps": 2000,
    },
    ("8b.yaml", "dpo"): {
        **COMMON,
        **DPO_BATCH,
        "stage": "dpo",
        "dataset": "dpo_mix_en,dpo_mix_zh",
        "pref_beta": 0.1,
        "pref_loss": "sigmoid",
        "learning_rate": 5.0e-6,
        "save_steps": 4000,
        "eval_steps": 4000,
    },
    ("8b-2xdp.yaml", "dpo"): {
        **COMMON,
        **DPO_BATCH,
        "stage": "dpo",
        "dataset": "dpo_mix_en,dpo_mix_zh",
        "pref_beta": 0.1,
        "pref_loss": "sigmoid",
        "learning_rate": 5.0e-6,
        "save_steps": 2000,
        "eval_steps": 2000,
    },
    ("70b-4xdp.yaml", "sft"): {
        **COMMON,
        **PACKED,
        "stage": "sft",
        "dataset": "identity,alpaca_gpt4_en,alpaca_gpt4_zh",
        "learning_rate": 1.0e-5,
        "save_steps": 2000,
        "eval_steps": 2000,
    },
}
# merging/8b-sft.yaml and 8b-dpo.yaml
SEED_MERGE = {"template": "llama3", "finetuning_type": "lora", "export_size": 2, "export_device": "cpu", "export_legacy_format": False}


@pytest.mark.parametrize("preset,stage", sorted(SEED))
def test_training_config_is_the_seeds(preset, stage):
    cfg = pipeline.config_data(render(preset, stage), "train.yaml")
    want = SEED[(preset, stage)]
    assert {k: cfg.get(k) for k in want} == want
    assert type(cfg["learning_rate"]) is float and type(cfg["num_train_epochs"]) in (int, float)


def test_seed_batch_is_one_setting_away():
    """The seed's batch is still expressible, where a card holds its worst case; on its own
    40 GB card the chart refuses it and names the value."""
    sets = ("sft.packing=false", "sft.perDeviceTrainBatchSize=16", "sft.gradientAccumulationSteps=1", "training.enableLigerKernel=false")
    cfg = pipeline.config_data(render("8b.yaml", "sft", *sets, "common.gpu.memoryGiB=4096"), "train.yaml")
    assert cfg["per_device_train_batch_size"] == 16 and "neat_packing" not in cfg
    assert cfg["enable_liger_kernel"] is False
    err = helm.render_error(rel("8b.yaml", "sft", *sets))
    assert "sft.perDeviceTrainBatchSize: the worst micro batch" in err


@pytest.mark.parametrize(
    "preset,gpus,zero", [("8b.yaml", 1, 0), ("8b-2xdp.yaml", 2, 2), ("70b-4xdp.yaml", 4, 3), ("70b-4xdp-qlora.yaml", 4, 3)]
)
def test_parallelism(preset, gpus, zero):
    for stage in ("sft", "dpo"):
        objects = render(preset, stage)
        dj = one(objects, "DeepSpeedJob")
        assert dj["spec"]["config"]["slotsPerWorker"] == gpus
        assert dj["spec"]["worker"]["replicas"] == 1
        assert pipeline.config_data(objects, "ds_config.json")["zero_optimization"]["stage"] == zero


@pytest.mark.parametrize(
    "stage,base,adapter,out",
    [
        ("merge-sft", "models/Meta-Llama-3.1-8B", "saves/Meta-Llama-3.1-8B/lora/sft", "models/Meta-Llama-3.1-8B-sft"),
        ("merge-dpo", "models/Meta-Llama-3.1-8B-sft", "saves/Meta-Llama-3.1-8B/lora/dpo", "models/Meta-Llama-3.1-8B-dpo"),
    ],
)
def test_merge_config_is_the_seeds(stage, base, adapter, out):
    cfg = pipeline.config_data(render("8b.yaml", stage), "merge.yaml")
    assert {k: cfg[k] for k in SEED_MERGE} == SEED_MERGE
    assert (cfg["model_name_or_path"], cfg["adapter_name_or_path"], cfg["export_dir"]) == tuple(
        f"/t9k/mnt/{p}" for p in (base, adapter, out)
    )


def test_70b_adapter_never_overwrites_the_8b_one():
    """The seed's 70B config wrote to the 8B path (seed-review.md)."""
    out8 = pipeline.config_data(render("8b.yaml", "sft"), "train.yaml")["output_dir"]
    out70 = pipeline.config_data(render("70b-4xdp.yaml", "sft"), "train.yaml")["output_dir"]
    assert out8 != out70 and "70B" in out70


@pytest.mark.parametrize("preset", ["8b.yaml", "8b-2xdp.yaml"])
def test_8b_host_memory_can_load_the_model(preset):
    """The seed's 8 Gi limit cannot hold 16 GB of weights; the presets can."""
    c = pod_spec(one(render(preset, "sft"), "DeepSpeedJob"))["containers"][0]
    assert int(c["resources"]["limits"]["memory"].removesuffix("Gi")) >= 64
    assert int(c["resources"]["limits"]["cpu"]) >= 16  # preprocessing_num_workers: 16
