"""Model facts (files/models.yaml): a known model's model.* values are checked against its
config.json facts, the PVC must hold the pipeline's models, the NOTES call only gated
repositories gated, and the merge-memory contract in values.yaml is the rule's."""

import math
import re

import pytest
import yaml

from chartkit import helm
from chartkit.chart import ROOT, VALUES_DIR, presets
from harness.testkit import rel, render

MODELS = yaml.safe_load((ROOT / "files/models.yaml").read_text())
FACTS = ("parametersBillion", "numLayers", "hiddenSize", "numAttentionHeads", "numKeyValueHeads", "vocabSize")


def test_the_table_has_every_llama_3_size_and_its_facts():
    sizes = {round(m["parametersBillion"]) for m in MODELS.values()}
    assert {1, 3, 8, 71, 406} <= sizes
    for name, m in MODELS.items():
        assert set(FACTS) | {"gated", "huggingface", "modelscope"} <= set(m), name
        assert m["hiddenSize"] % m["numAttentionHeads"] == 0 and m["numAttentionHeads"] % m["numKeyValueHeads"] == 0, name
        assert (ROOT / m["preset"]).is_file() if "preset" in m else True, name
    repos = [r.lower() for m in MODELS.values() for hub in ("huggingface", "modelscope") for r in m[hub]]
    hf = [r.lower() for m in MODELS.values() for r in m["huggingface"]]
    assert len(hf) == len(set(hf)), "a Hugging Face repository is listed twice"
    assert repos


@pytest.mark.parametrize("preset", presets() + ["ci-workspace.yaml", "ci-serve.yaml"])
def test_every_values_file_agrees_with_the_table(preset):
    """The presets and CI values name known repositories, and their facts are the table's."""
    values = yaml.safe_load((ROOT / "values.yaml").read_text())["model"]
    values.update(yaml.safe_load((VALUES_DIR / preset).read_text()).get("model", {}))
    known = [m for m in MODELS.values() if values["huggingfaceRepo"] in m["huggingface"]]
    assert len(known) == 1, values["huggingfaceRepo"]
    for key in ("numLayers", "hiddenSize", "numKeyValueHeads", "vocabSize"):
        assert values[key] == known[0][key], key
    assert math.isclose(values["parametersBillion"], known[0]["parametersBillion"], rel_tol=0.05)


@pytest.mark.parametrize("major", helm.MAJORS)
def test_a_known_repository_with_another_models_facts_fails_naming_the_fields(major):
    """The issue's case: the 8B preset with the 70B repository once rendered ZeRO-0 on one 40 GB GPU."""
    err = helm.render_error(
        rel("8b.yaml", None, "model.name=Meta-Llama-3.1-70B", "model.huggingfaceRepo=meta-llama/Llama-3.1-70B", major=major)
    )
    assert (
        "model.parametersBillion: meta-llama/Llama-3.1-70B (model.huggingfaceRepo) has model.parametersBillion 70.55 "
        "(not 8), model.numLayers 80 (not 32), model.hiddenSize 8192 (not 4096)"
    ) in err
    assert "Fix: --set model.parametersBillion=70.55,model.numLayers=80,model.hiddenSize=8192" in err
    assert "-f values/70b-4xdp.yaml" in err


def test_the_repository_of_the_source_is_the_one_looked_up():
    # With ModelScope the downloaded repository is model.modelscopeRepo; the Hugging Face one is not read.
    assert render("8b.yaml", None, "model.source=modelscope", "model.huggingfaceRepo=meta-llama/Llama-3.1-70B")
    err = helm.render_error(rel("8b.yaml", None, "model.source=modelscope", "model.modelscopeRepo=llm-research/meta-llama-3.1-70b"))
    assert "(model.modelscopeRepo) has model.parametersBillion 70.55 (not 8)" in err


def test_parameters_within_five_percent_pass_and_beyond_fail(tmp_path):
    ok, bad = tmp_path / "ok.yaml", tmp_path / "bad.yaml"
    ok.write_text("model: {parametersBillion: 8.4}\n")  # 8.03 * 1.046
    bad.write_text("model: {parametersBillion: 8.5}\n")  # 8.03 * 1.059
    assert helm.render(helm.Release(values=("values/8b.yaml", str(ok))))
    err = helm.render_error(helm.Release(values=("values/8b.yaml", str(bad))))
    assert "model.parametersBillion: meta-llama/Llama-3.1-8B (model.huggingfaceRepo) has model.parametersBillion 8.03 (not 8.5)" in err


def test_an_unknown_repository_is_not_checked():
    assert render("8b.yaml", None, "model.huggingfaceRepo=team/own-model", "model.numLayers=7")


def pvc_error(size, *sets, preset="8b.yaml"):
    return helm.render_error(rel(preset, "workspace", f"storage.size={size}", *sets))


@pytest.mark.parametrize("preset", presets())
def test_pvc_must_hold_the_base_and_both_merged_models(preset):
    params = yaml.safe_load((VALUES_DIR / preset).read_text())["model"]["parametersBillion"]
    model = params * 2e9 / 2**30
    need = math.ceil(model * 3 * 1.1)
    assert render(preset, "workspace", f"storage.size={need}Gi")
    err = pvc_error(f"{need - 1}Gi", preset=preset)
    assert f"storage.size: {need - 1}Gi cannot hold the pipeline's models" in err
    assert f"is {model:.1f} GiB in bf16" in err and f"Fix: set storage.size={need}Gi or more" in err


def test_an_existing_claim_is_not_sized():
    assert render("8b.yaml", "workspace", "storage.size=1Gi", "storage.existingClaim=team-pvc")


def test_the_pvc_rule_holds_only_where_the_pvc_is_rendered():
    assert render("8b.yaml", "sft", "storage.size=1Gi")


def notes(*args):
    proc = helm.run([helm.helm_path("4"), "install", "--dry-run=client", "notes", str(ROOT), *args])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("NOTES:", 1)[1]


def test_gated_text_only_for_gated_repositories():
    gated = notes("-f", "values/8b.yaml", "--set", "stages={workspace}")
    assert "meta-llama/Llama-3.1-8B is gated" in gated
    assert "gated" not in notes("-f", "values/ci-workspace.yaml")
    assert "gated" not in notes("-f", "values/8b.yaml", "--set", "stages={workspace}", "--set", "model.huggingfaceRepo=team/own-model")
    # ModelScope serves its copies without a Hugging Face token.
    assert "gated" not in notes("-f", "values/8b.yaml", "--set", "stages={workspace}", "--set", "model.source=modelscope")
    assert "gated" not in notes("-f", "values/8b.yaml", "--set", "stages={workspace}", "--set", "common.huggingface.existingSecret=hf")


def test_merge_memory_contract_in_values_is_the_rules():
    """values.yaml says how much memory a CPU merge needs; the rule demands exactly that."""
    text = (ROOT / "values.yaml").read_text()
    factor = float(re.search(r"with `exportDevice: cpu` at least ([0-9.]+) × the bf16", text).group(1))
    need = factor * 8 * 2  # GiB of the 8B preset's bf16 model, as the rule counts it
    assert render(
        "8b.yaml", "merge-sft", f"merge.resources.limits.memory={math.ceil(need)}Gi", f"merge.resources.requests.memory={math.ceil(need)}Gi"
    )
    err = helm.render_error(
        rel("8b.yaml", "merge-sft", f"merge.resources.limits.memory={math.ceil(need) - 1}Gi", "merge.resources.requests.memory=8Gi")
    )
    assert "merge.resources.limits.memory:" in err
