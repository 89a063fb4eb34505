"""Cross-field rules (templates/_validate.tpl): each broken rule fails the render,
with both Helm majors, naming the field and the fix. The full bad-values
corpus is tier 4 (tests/bad_values/, a later issue)."""
import pytest

from chartkit import helm
from conftest import rel

CASES = [
    # (id, preset, stages, sets, text the error must contain)
    ("70b-zero2-40gb", "70b-4xdp.yaml", "sft", ("training.deepspeed.zeroStage=2", "common.gpu.memoryGiB=40"),
     ["training.deepspeed.zeroStage", "ZeRO-2", "Fix: use ZeRO-3"]),
    ("70b-zero3-40gb", "70b-4xdp.yaml", "dpo", ("common.gpu.memoryGiB=40",), ["training.deepspeed.zeroStage", "qlora"]),
    ("full-8b-one-gpu", "8b.yaml", "sft", ("training.method=full",), ["training.deepspeed.zeroStage", "full"]),
    ("offload-params-zero2", "8b-2xdp.yaml", "sft", ("training.deepspeed.offloadParams=true",),
     ["training.deepspeed.offloadParams", "ZeRO-3"]),
    ("offload-optimizer-zero0", "8b.yaml", "sft", ("training.deepspeed.offloadOptimizer=true",),
     ["training.deepspeed.offloadOptimizer"]),
    ("tokenizers-over-cpus", "8b.yaml", "sft", ("training.preprocessingNumWorkers=64",),
     ["training.preprocessingNumWorkers", "training.resources.limits.cpu"]),
    ("unknown-dataset", "8b.yaml", "sft", ("sft.datasets={alpaca_gpt4_en,nope}",), ["sft.datasets[1]", '"nope"', "alpaca_gpt4_en"]),
    ("sft-on-preference-data", "8b.yaml", "sft", ("sft.datasets={dpo_mix_en}",), ["sft.datasets[0]", "ranking"]),
    ("dpo-on-instruction-data", "8b.yaml", "dpo", ("dpo.datasets={alpaca_gpt4_en}",), ["dpo.datasets[0]", "ranking"]),
    ("merge-full", "8b-2xdp.yaml", "merge-sft", ("training.method=full",), ["merge-sft", "training.method=full"]),
    ("merge-70b-low-memory", "70b-4xdp.yaml", "merge-dpo",
     ("merge.resources.limits.memory=128Gi", "merge.resources.requests.memory=128Gi"), ["merge.resources.limits.memory"]),
    ("merge-gpu-without-gpus", "8b.yaml", "merge-sft", ("merge.exportDevice=auto",), ["merge.gpus"]),
    ("eval-70b-one-gpu", "70b-4xdp.yaml", "eval", ("eval.gpus=1",), ["eval.gpus"]),
    ("serve-lora-of-base", "8b.yaml", "serve", ("serving.lora=true", "serving.model=base"), ["serving.lora", "base"]),
    ("serve-lora-of-full", "8b.yaml", "serve", ("serving.lora=true", "training.method=full"), ["serving.lora", "full"]),
    ("serve-rank-above-vllm", "8b.yaml", "serve", ("serving.lora=true", "training.lora.rank=600"), ["training.lora.rank", "512"]),
    ("serve-max-lora-rank-below-trained", "8b.yaml", "serve",
     ("serving.lora=true", "training.lora.rank=64", "serving.extraArgs.max-lora-rank=16"), ["serving.extraArgs.max-lora-rank", "64"]),
    ("serve-tp-3", "8b.yaml", "serve", ("serving.tensorParallelSize=3",), ["serving.tensorParallelSize", "key/value heads"]),
    ("serve-70b-one-gpu", "70b-4xdp.yaml", "serve", ("serving.tensorParallelSize=1",), ["serving.tensorParallelSize", "KV cache"]),
    ("request-over-limit", "8b.yaml", "sft", ("training.resources.requests.memory=128Gi",), ["training.resources.requests.memory"]),
    ("cpu-request-over-limit", "8b.yaml", "sft", ("training.resources.requests.cpu=32",), ["training.resources.requests.cpu"]),
    ("shm-over-half-memory", "8b.yaml", "serve", ("serving.shmSize=40Gi",), ["serving.shmSize", "serving.resources.limits.memory"]),
]


@pytest.mark.parametrize("major", helm.MAJORS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule_fails_with_field_and_fix(case, major):
    _, preset, stage, sets, needles = case
    assert helm.render(rel(preset, stage, major=major)), "the preset itself must render"
    err = helm.render_error(rel(preset, stage, *sets, major=major))
    assert "llama-factory: invalid values" in err
    for n in needles:
        assert n in err, f"{n!r} missing from:\n{err}"
    assert "Fix:" in err


def test_all_broken_rules_are_reported_at_once():
    err = helm.render_error(rel("70b-4xdp.yaml", ("sft", "merge-sft", "serve"), "common.gpu.memoryGiB=20",
                                "training.preprocessingNumWorkers=64", "serving.tensorParallelSize=3"))
    assert err.count("\n  - ") >= 4, err
