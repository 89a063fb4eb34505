"""Defaults that follow the card (issue 17) against the GPU runs that measured them
(scripts/gpu_proof.py on 1 x H200 under a card-size cap, and the chart's launcher against the hook
on 1 x H100; tests/gpu/card-defaults-results.json, docs/gpu-card-defaults.md).

For values/8b.yaml sft and dpo on a 40 GB and an 80 GB card: the checkpointing, micro batch and
accumulation the chart chooses are the ones that ran with every sequence at the cutoff under that
card's cap; the chart's worst-case estimate for every measured config is at least what the GPU
used (so a config the rule admits is one the GPU run fitted); the chosen config needed at most
90 % of the card; and it is the fastest of the measured checkpointing / micro-batch variants the
rule admits on that card. A change to the chart's choice or to its memory model that moves away
from the measurement fails here."""

import json
import re

import pytest
import yaml

import gpu_proof
from chartkit.chart import ROOT
from harness.testkit import one, render

RESULTS = json.loads((ROOT / "tests/gpu/card-defaults-results.json").read_text())
DOC = (ROOT / "docs/gpu-card-defaults.md").read_text()
CAPS = {40: 39.5, 80: 79.5}  # common.gpu.memoryGiB -> the cap the run had (what such a card leaves a process)
# The chart's choice per card and the run that measured that config. The 40 GB card's SFT (the
# first 4 of 32 decoder layers checkpointed) was measured by gpu_proof's experiment hook
# (sft-40-ck4, RUN_ENV, 1 x H200), the same patch the chart's launcher now applies; sft-40-ck4-chart,
# the run through the chart's own launcher, ran on 2026-12-06 on an H100 in one call with the hook's
# run (test_the_chart_launcher_run_matches_the_hook_run; docs/gpu-card-defaults.md).
CHOSEN = {("sft", 40): "sft-40-ck4", ("dpo", 40): "dpo-40", ("sft", 80): "sft-80", ("dpo", 80): "dpo-80"}
# Today's defaults before issue 17 (checkpointing on, micro batch 1), measured for the speed-up.
OLD = {("sft", 40): "sft-40", ("dpo", 40): "dpo-40", ("sft", 80): "sft-80-ckpt", ("dpo", 80): "dpo-40"}
ANNOTATION = "llama-factory/worst-case-gpu-memory"
NUM = r"([0-9.]+)"
KEYS = ("disable_gradient_checkpointing", "checkpointed_layers", "per_device_train_batch_size", "gradient_accumulation_steps", "cutoff_len")


def runs() -> dict[str, tuple[float, dict]]:
    """Every completed worst-case run by name, with the cap of its call (a name's first run: the
    H200's of 2026-12-02 where a later call repeated it on another card)."""
    out = {}
    for call in RESULTS["calls"]:
        for r in call["runs"]:
            if r.get("data") == "worst" and r.get("tokens_per_second"):
                if r["run"] not in out:
                    out[r["run"]] = (call["cap"]["cap_gib"], r)
                    GPU[r["run"]] = tuple(call["gpu"])
    return out


GPU: dict[str, tuple[str, ...]] = {}  # run -> the GPU of the call that RUNS took it from
RUNS = runs()


def sets_of(name: str) -> tuple[str, ...]:
    """The stage and --set overrides of the run's config in the chart's values (values/8b.yaml): what
    gpu_proof rendered it with, or for a run made with its experiment hook what the chart renders
    the same config with today (gpu_proof.CHART_EQUIVALENT)."""
    preset, stage, extra = gpu_proof.RUNS[name]
    extra = gpu_proof.CHART_EQUIVALENT.get(name, extra)
    assert preset == "values/8b.yaml"
    return (stage,) + tuple(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in extra.items())


def config_of(r: dict) -> dict:
    """The KEYS of the config a run trained: its train.yaml, where gpu_proof's hook checkpointed
    only the first K layers (GPU_PROOF_CKPT_LAYERS, as its log lines say) with checkpointed_layers: K."""
    c = {k: r["config"].get(k) for k in KEYS}
    hook = r.get("env", {}).get("GPU_PROOF_CKPT_LAYERS")
    if hook:
        assert c["checkpointed_layers"] is None and not c["disable_gradient_checkpointing"]
        assert any(f"first {hook} decoder layers checkpointed" in ln for ln in r["patch_lines"]), r["patch_lines"]
        c["checkpointed_layers"] = int(hook)
    return c


def train_keys(train: dict) -> dict:
    return {k: train.get(k) for k in KEYS}


def rendered(stage: str, *sets: str) -> tuple[dict, dict]:
    """The rendered train.yaml and the chart's estimate (the DeepSpeedJob's annotation)."""
    objs = render("8b.yaml", stage, *sets)
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and "train.yaml" in o["data"])
    text = one(objs, "DeepSpeedJob")["metadata"]["annotations"][ANNOTATION]
    m = re.match(rf"{NUM} GiB per GPU \(allocator {NUM} \+ runtime {NUM}\)", text)
    assert m, text
    return yaml.safe_load(cm["data"]["train.yaml"]), {
        "peak": float(m.group(1)),
        "allocator": float(m.group(2)),
        "runtime": float(m.group(3)),
        "text": text,
    }


def needed(run: dict) -> float:
    """What the run needed on the card: the allocator's peak plus what the process held outside the
    allocator (nvidia-smi minus the reserved peak); reserved-but-free cache is left out, as PyTorch
    returns it before failing an allocation (README, worst-case memory)."""
    process = max(map(float, run["nvidia_smi_peak_gib"].values()))
    return run["peak_allocated_gib"] + (process - run["peak_reserved_gib"])


def test_the_results_hold_the_chosen_configs_under_their_cards_caps():
    pins = {}
    for f in ("requirements.txt", "requirements-peer.txt"):
        for line in (ROOT / "images/llama-factory" / f).read_text().splitlines():
            name, sep, ver = line.partition("==")
            if sep:
                pins[name.strip()] = ver.strip()
    for call in RESULTS["calls"]:
        # The cap was in force: a test allocation 0.5 GiB above the free memory was refused.
        assert call["cap"]["check"]["alloc_free_plus_0.5"] == "refused"
        assert abs(call["cap"]["holder"]["free_after_gib"] - call["cap"]["cap_gib"]) < 0.05
        # The training stack is the image's.
        for pkg in ("llamafactory", "deepspeed", "transformers", "peft", "trl", "liger-kernel", "accelerate", "datasets"):
            assert call["versions"][pkg] == pins[pkg], pkg
    for (stage, card), name in CHOSEN.items():
        cap, r = RUNS[name]
        assert cap == CAPS[card], name
        assert r["returncode"] == 0 and r["stage"] == stage
        # Every step it was rendered for was trained (gpu_proof's STEPS, or render --steps).
        steps = int(re.search(r"--steps (\d+)", RESULTS["commands"]["render (here)"]).group(1))
        assert r["steps"] == gpu_proof.STEPS.get(name, steps) > 1


@pytest.mark.parametrize("stage,card", sorted(CHOSEN))
def test_the_chart_chooses_the_measured_config(stage, card):
    """values/8b.yaml on the card (nothing else set) renders the checkpointing, micro batch,
    accumulation and cutoff of the run measured under that card's cap, and the run trained
    exactly the worst-case tokens of that config per optimizer step."""
    train, _ = rendered(stage, f"common.gpu.memoryGiB={card}")
    _, r = RUNS[CHOSEN[(stage, card)]]
    assert train_keys(train) == config_of(r)
    seqs = 2 if stage == "dpo" else 1
    assert r["tokens_per_step"] == seqs * train["cutoff_len"] * train["per_device_train_batch_size"] * train["gradient_accumulation_steps"]


MODEL_RUNS = sorted(n for n in RUNS if n in gpu_proof.RUNS)


@pytest.mark.parametrize("name", MODEL_RUNS)
def test_the_estimate_is_at_least_what_the_gpu_used(name):
    """Every measured config the chart can render (partial checkpointing included): the allocator
    estimate is 0 to +5 % above the measured allocator peak, and the whole estimate covers the
    allocator peak plus what the process held outside the allocator. So a config the 90 % rule
    admits fitted on the GPU."""
    cap, r = RUNS[name]
    train, est = rendered(*sets_of(name))
    assert train_keys(train) == config_of(r)
    err = (est["allocator"] - r["peak_allocated_gib"]) / r["peak_allocated_gib"]
    assert 0.0 <= err <= 0.05, f"{name}: {est['text']} vs measured {r['peak_allocated_gib']} GiB ({err:+.1%})"
    assert est["peak"] >= needed(r), f"{name}: {est['text']} vs needed {needed(r):.2f} GiB"
    assert max(map(float, r["nvidia_smi_peak_gib"].values())) < cap


@pytest.mark.parametrize("stage,card", sorted(CHOSEN))
def test_the_chosen_config_needed_at_most_90_percent_of_the_card(stage, card):
    _, r = RUNS[CHOSEN[(stage, card)]]
    assert needed(r) <= 0.9 * card


@pytest.mark.parametrize("stage,card", sorted(CHOSEN))
def test_the_chosen_config_is_the_fastest_measured_variant_the_rule_admits(stage, card):
    """Among the runs under the same cap that differ from the chart's config only in checkpointing
    (off, the first K layers, all) and micro batch (no extraArgs levers), the one the chart chooses
    ran at least as fast as every one the rule also admits on that card, and at least as fast as
    the old defaults (checkpointing on, micro batch 1)."""
    chosen = RUNS[CHOSEN[(stage, card)]][1]
    compared = 0
    for name, (cap, r) in RUNS.items():
        _, _, extra = gpu_proof.RUNS[name]
        if (
            cap != CAPS[card] or r["stage"] != stage or any(".extraArgs." in k for k in extra) or GPU[name] != GPU[CHOSEN[(stage, card)]]
        ):  # tokens/s compare on one card only
            continue
        c = config_of(r)
        layers = (f"training.gradientCheckpointingLayers={c['checkpointed_layers']}",) if c["checkpointed_layers"] else ()
        try:
            rendered(
                stage,
                f"common.gpu.memoryGiB={card}",
                f"training.gradientCheckpointing={str(not c['disable_gradient_checkpointing']).lower()}",
                *layers,
                f"{stage}.perDeviceTrainBatchSize={c['per_device_train_batch_size']}",
                f"{stage}.gradientAccumulationSteps={c['gradient_accumulation_steps']}",
            )
        except Exception:
            continue  # the rule refuses it on this card
        compared += 1
        assert chosen["tokens_per_second"] >= r["tokens_per_second"], name
    assert compared >= 1
    assert chosen["tokens_per_second"] >= RUNS[OLD[(stage, card)]][1]["tokens_per_second"]


def test_the_chart_launcher_run_matches_the_hook_run():
    """The 40 GB card's SFT through the chart's launcher (sft-40-ck4-chart: checkpointed_layers: 4
    in train.yaml, applied by files/launch.py) and through gpu_proof's hook (sft-40-ck4), in one call
    on one card: the same config, the launcher's log says it checkpointed layers 0-3 of 32, the same
    memory to the hundredth of a GiB (the same activations kept), the same losses (the same
    computation) and tokens/s within 5 %."""
    call = next(c for c in RESULTS["calls"] if {"sft-40-ck4", "sft-40-ck4-chart"} <= {r["run"] for r in c["runs"]})
    assert call["cap"]["cap_gib"] == CAPS[40]
    hook, chart = (next(r for r in call["runs"] if r["run"] == n) for n in ("sft-40-ck4", "sft-40-ck4-chart"))
    assert hook["returncode"] == chart["returncode"] == 0 and hook["steps"] == chart["steps"] > 1
    assert "GPU_PROOF_CKPT_LAYERS" not in chart["env"] and chart["config"]["checkpointed_layers"] == 4
    assert config_of(chart) == config_of(hook)
    assert any("decoder layers 0-3 of 32 checkpointed, 4-31 without" in ln for ln in chart["patch_lines"]), chart["patch_lines"]
    for key in ("peak_allocated_gib", "peak_reserved_gib", "nvidia_smi_peak_gib"):
        assert chart[key] == hook[key], key
    assert all(a[0] == b[0] and abs(a[1] - b[1]) <= 0.01 for a, b in zip(hook["loss"], chart["loss"]))
    assert abs(chart["tokens_per_second"] / hook["tokens_per_second"] - 1) <= 0.05


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_doc_table_quotes_the_results(name):
    """docs/gpu-card-defaults.md: every measured run's row quotes its tokens/s and allocator peak."""
    _, r = RUNS[name]
    row = next((ln for ln in DOC.splitlines() if ln.startswith("|") and f"`{name}`" in ln), None)
    assert row, name
    assert f"{r['tokens_per_second']:,.0f}" in row and f"{r['peak_allocated_gib']:.2f}" in row, row
