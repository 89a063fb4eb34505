"""Peer tier, vLLM part: every `vllm serve` command line the chart renders is
checked against the flags, types and choices of the pinned vLLM version, read
from vLLM's own parser into tests/peer/vllm_flags.json (scripts/vllm_flags.py).
Needs no vLLM install, so it always runs."""

import pytest
import yaml

from chartkit.chart import ROOT
from harness import vllm_args
from harness.testkit import PRESETS, one, rel, render

TABLE = vllm_args.load_table()
VARIANTS = {
    "merged": (),
    "lora": ("serving.lora=true", "serving.model=sft"),
    "lora-rank-64": ("serving.lora=true", "training.lora.rank=64"),
    "api-key-and-extra": (
        "serving.apiKey.existingSecret=vllm-key",
        "serving.extraArgs.enforce-eager=true",
        "serving.extraArgs.no-enable-prefix-caching=true",
        "serving.extraArgs.swap-space=4",
    ),
}
PREFETCH = [rel(p, "serve", *sets) for p in PRESETS for sets in VARIANTS.values()]


def args_of(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("preset", PRESETS)
def test_rendered_vllm_args_are_valid(preset, variant):
    assert vllm_args.check_args(args_of(render(preset, "serve", *VARIANTS[variant])), TABLE) == []


@pytest.mark.parametrize(
    "extra,needle",
    [
        ("serving.extraArgs.tensor-paralel-size=2", "did you mean --tensor-parallel-size"),
        ("serving.extraArgs.max-model-len=lots", "max-model-len"),
        ("serving.extraArgs.disable-log-stats=yes", "takes no value"),
        ("serving.extraArgs.dtype=bfloat17", "dtype"),
    ],
)
def test_misspelled_vllm_flag_fails_with_the_flag_table(extra, needle):
    errors = vllm_args.check_args(args_of(render("8b.yaml", "serve", extra)), TABLE)
    assert errors and needle in " ".join(errors), errors


def test_table_is_the_pinned_image_version():
    tag = yaml.safe_load((ROOT / "values.yaml").read_text())["images"]["vllm"]["tag"]
    assert tag == f"v{TABLE['vllm_version']}"
    assert TABLE["generated_by"].startswith("bash scripts/vllm_flags_env.sh")


def test_chart_lora_ranks_are_the_ones_vllm_allows():
    """vLLM 0.11.0's LoRAConfig allows 8, 16, 32, 64, 128, 256, 320, 512 (its parser takes any int)."""
    for rank, want in ((1, 8), (8, 8), (9, 16), (64, 64), (65, 128), (300, 320), (512, 512)):
        c = render("8b.yaml", "serve", "serving.lora=true", f"training.lora.rank={rank}")
        assert f"--max-lora-rank={want}" in args_of(c)
