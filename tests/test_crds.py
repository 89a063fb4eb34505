"""The generated T9k CRDs (tests/crds/, for the cluster tier) are current,
structural, valid CustomResourceDefinitions, and accept exactly what the
offline tier accepts: every rendered DeepSpeedJob and Notebook passes their
openAPIV3Schema under strict field validation, and a typo fails it."""

import copy
import subprocess
import sys

import jsonschema
import pytest

from chartkit import k8s
from chartkit.chart import ROOT, STAGES, load_yaml
from harness.testkit import PRESETS, rel, render

CRDS = {p.name: load_yaml(p.read_text()) for p in sorted((ROOT / "tests/crds").glob("*.yaml"))}
KIND = {c["spec"]["names"]["kind"]: c for c in CRDS.values()}


def test_crds_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/gen_crds.py"), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(CRDS))
@pytest.mark.parametrize("version", k8s.K8S_VERSIONS)
def test_crd_is_a_valid_custom_resource_definition(name, version):
    assert k8s.errors(CRDS[name], version) == []


def _walk(node, path=""):
    yield path, node
    for k, v in node.get("properties", {}).items():
        yield from _walk(v, f"{path}.{k}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", sorted(CRDS))
def test_crd_schema_is_structural(name):
    schema = CRDS[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and not {"oneOf", "anyOf", "allOf", "not"} & set(node), path
        assert isinstance(node.get("type"), str) or node.get("x-kubernetes-int-or-string"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
            # Only the root metadata, which the API server owns, may stay open without saying so.
            assert node.get("x-kubernetes-preserve-unknown-fields") or path == ".metadata", path
        if node.get("type") == "array":
            assert "items" in node, path


def strict(schema):
    """The schema as the API server applies it with strict field validation."""
    s = copy.deepcopy(schema)
    for _, node in _walk(s):
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    return jsonschema.Draft4Validator(s)


PREFETCH = [rel(p, s, "notebook.ssh.enabled=true", values=("tests/values/rich.yaml",)) for p in PRESETS for s in STAGES]
VALIDATORS = {k: strict(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) for k, c in KIND.items()}


@pytest.mark.parametrize("preset", PRESETS)
def test_rendered_t9k_objects_pass_the_crd_schema(preset):
    seen = set()
    for stage in STAGES:
        for o in render(preset, stage, "notebook.ssh.enabled=true", values=("tests/values/rich.yaml",)):
            if o["kind"] in VALIDATORS:
                seen.add(o["kind"])
                errs = [e.message for e in VALIDATORS[o["kind"]].iter_errors(o)]
                assert not errs, f"{o['kind']}: {errs[:3]}"
    assert seen == set(VALIDATORS)


def test_typo_in_pod_template_fails_the_crd_schema():
    dj = copy.deepcopy(next(o for o in render("8b.yaml", "sft") if o["kind"] == "DeepSpeedJob"))
    dj["spec"]["worker"]["template"]["spec"]["containers"][0]["resoures"] = {}
    assert any("resoures" in e.message for e in VALIDATORS["DeepSpeedJob"].iter_errors(dj))
