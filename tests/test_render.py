"""Tier 1: every preset × stage renders with Helm 3 and 4 and lints strictly."""

import functools

import pytest
import yaml

from chartkit import helm
from chartkit.chart import STAGE_KINDS, STAGES
from harness.testkit import ALL_STAGES, PRESETS, rel, render

MAJORS = helm.MAJORS
LINTED = PRESETS + ["8b-2xdp.yaml team-example.yaml", "8b-2xdp.yaml image-upstream.yaml"]
PREFETCH = (
    [rel(p, s, major=m) for p in PRESETS for s in STAGES for m in MAJORS]
    + [rel(p, STAGES, major=m) for p in PRESETS for m in MAJORS]
    + [rel(p) for p in PRESETS]
    + [rel(None, STAGES)]
    + [
        functools.partial(helm.lint, tuple(f"values/{f}" for f in p.split()), sets, m)
        for p in LINTED
        for m in MAJORS
        for sets in ((), (ALL_STAGES,))
    ]
)


@pytest.mark.parametrize("major", MAJORS)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_stage_renders_the_stage_kinds(preset, stage, major):
    objects = render(preset, stage, major=major)
    assert {o["kind"] for o in objects} == STAGE_KINDS[stage]
    for o in objects:
        assert o["metadata"]["labels"]["app.kubernetes.io/component"].startswith(stage)


@pytest.mark.parametrize("preset", PRESETS)
def test_helm_3_and_4_render_the_same_objects(preset):
    assert render(preset, STAGES, major="3") == render(preset, STAGES, major="4")


@pytest.mark.parametrize("major", MAJORS)
@pytest.mark.parametrize("preset", LINTED)
def test_lint_strict(preset, major):
    files = tuple(f"values/{p}" for p in preset.split())
    for sets in ((), (ALL_STAGES,)):
        proc = helm.lint(files, sets, major)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "[WARNING]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("preset", PRESETS)
def test_default_stage_of_every_preset_is_sft(preset):
    """`helm install llama31-sft . -f values/<preset>` starts the SFT job."""
    objects = render(preset)
    assert {o["kind"] for o in objects} == {"ConfigMap", "DeepSpeedJob"}
    assert all(o["metadata"]["labels"]["app.kubernetes.io/component"] == "sft" for o in objects)


def test_chart_defaults_render_without_a_preset():
    assert {o["kind"] for o in render(None, STAGES)} == set().union(*STAGE_KINDS.values())


@pytest.mark.parametrize("major", MAJORS)
def test_unknown_stage_fails_listing_the_valid_ones(major):
    err = helm.render_error(rel("8b.yaml", ("sft", "trian"), major=major))
    assert "stages" in err
    for s in STAGES:
        assert s in err


@pytest.mark.parametrize("major", MAJORS)
def test_duplicate_stage_fails(major):
    err = helm.render_error(rel("8b.yaml", ("sft", "sft"), major=major))
    assert "/stages" in err and "equal" in err


def test_rendered_yaml_is_plain_documents():
    text = helm.run_template(rel("8b-2xdp.yaml", STAGES))
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert all({"apiVersion", "kind", "metadata"} <= set(d) for d in docs)


@pytest.mark.parametrize(
    "stage,sets,key,check",
    [
        ("sft", ("sft.extraArgs.plot_loss=false",), "train.yaml", "plot_loss: false"),
        ("sft", ("training.extraArgs.bf16=false",), "train.yaml", "bf16: false"),
        (
            "sft",
            ("training.deepspeed.extraConfig.zero_allow_untested_optimizer=false",),
            "ds_config.json",
            '"zero_allow_untested_optimizer": false',
        ),
        ("merge-sft", ("merge.extraArgs.export_legacy_format=true",), "merge.yaml", "export_legacy_format: true"),
    ],
)
def test_escape_hatches_can_turn_settings_off(stage, sets, key, check):
    """Overrides win even when false or 0 (sprig's mergeOverwrite would drop them)."""
    cm = [o for o in render("8b.yaml", stage, *sets) if o["kind"] == "ConfigMap"][0]
    assert check in cm["data"][key]


def test_false_removes_a_vllm_flag_the_chart_sets():
    dep = [o for o in render("8b.yaml", "serve", "serving.extraArgs.max-model-len=false") if o["kind"] == "Deployment"][0]
    assert not any(a.startswith("--max-model-len") for a in dep["spec"]["template"]["spec"]["containers"][0]["args"])


def test_large_numbers_render_as_integers():
    """Helm reads values numbers as float64 and prints 1000000 as 1e+06, which the API server
    refuses for an integer field (found by the values fuzzer): integer fields are printed as ints."""
    objects = helm.render(
        helm.Release(
            values=("values/8b.yaml",),
            set_json=(
                'stages=["sft","merge-sft","serve"]',
                "training.activeDeadlineSeconds=1000000",
                "merge.ttlSecondsAfterFinished=5000000",
                "serving.progressDeadlineSeconds=2000000",
                'serving.extraArgs={"max-num-batched-tokens":2000000}',
            ),
        )
    )
    dj = next(o for o in objects if o["kind"] == "DeepSpeedJob")
    job = next(o for o in objects if o["kind"] == "Job")
    dep = next(o for o in objects if o["kind"] == "Deployment")
    assert dj["spec"]["runPolicy"]["activeDeadlineSeconds"] == 1000000
    assert job["spec"]["ttlSecondsAfterFinished"] == 5000000
    assert dep["spec"]["progressDeadlineSeconds"] == 2000000
    assert "--max-num-batched-tokens=2000000" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
