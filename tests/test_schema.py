"""Tier 2: every rendered object validates strictly (unknown fields rejected)
against the Kubernetes schemas of the oldest and newest supported versions;
T9k objects against tests/schemas/, pod templates included. An object of a
kind with no schema fails."""

import copy
import json
import re

import pytest

from chartkit import k8s
from chartkit.chart import ROOT, STAGES
from harness.testkit import PRESETS, rel, render

OVERLAID = [(p, ()) for p in PRESETS] + [("8b-2xdp.yaml", ("values/team-example.yaml",)), ("8b-2xdp.yaml", ("values/image-upstream.yaml",))]
PREFETCH = [rel(p, s, "notebook.ssh.enabled=true", values=v) for p, v in OVERLAID for s in STAGES]


@pytest.mark.parametrize("version", k8s.K8S_VERSIONS)
@pytest.mark.parametrize("preset,values", OVERLAID)
def test_every_object_is_valid(preset, values, version):
    problems = []
    for stage in STAGES:
        for o in render(preset, stage, "notebook.ssh.enabled=true", values=values):
            try:
                errs = k8s.errors(o, version)
            except k8s.MissingSchema as e:
                errs = [str(e)]
            problems += [f"{stage} {o['kind']}/{o['metadata']['name']}: {m}" for m in errs]
    assert not problems, "\n".join(problems)


def test_missing_schema_is_a_failure():
    with pytest.raises(k8s.MissingSchema):
        k8s.validator("batch.tensorstack.dev/v1beta1", "PyTorchTrainingJob", "1.37.0")
    with pytest.raises(k8s.MissingSchema):
        k8s.validator("example.com/v1", "Widget", "1.30.0")


def _dsj():
    return copy.deepcopy(next(o for o in render("8b.yaml", "sft") if o["kind"] == "DeepSpeedJob"))


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda o: o["spec"]["worker"]["template"]["spec"]["containers"][0].update(resoures={}), "resoures"),
        (lambda o: o["spec"]["config"].update(slotPerWorker=1), "slotPerWorker"),
        (lambda o: o.update(kind="DeepspeedJob"), "'DeepSpeedJob' was expected"),
        (lambda o: o["spec"]["config"].update(run={"python": "train.py"}), "'train.py' is not of type 'array'"),
        (lambda o: o["spec"]["config"]["run"].update(module=["train"]), "too many properties"),
        (lambda o: o["spec"].update(elastic={"enable": True}), "enable"),
    ],
)
def test_t9k_typos_fail(mutate, needle):
    o = _dsj()
    mutate(o)
    # Validated as the DeepSpeedJob it claims to be (a renamed kind would also
    # find no schema at all, see test_missing_schema_is_a_failure).
    v = k8s.validator("batch.tensorstack.dev/v1beta1", "DeepSpeedJob", "1.37.0")
    errs = [e.message for e in v.iter_errors(o)]
    assert errs and needle in str(errs)


def test_notebook_legacy_run_mode_fails():
    nb = copy.deepcopy(next(o for o in render("8b.yaml", "workspace") if o["kind"] == "Notebook"))
    nb["spec"]["runMode"] = "running"
    assert any("runMode" in e for e in k8s.errors(nb, "1.37.0"))


def test_the_stage_list_is_one_list():
    """chartkit.chart.STAGES is the one list: the schema's enum is written from it (values_doc.py),
    which refuses an unknown, repeated or missing stage before any template runs, and no
    template keeps a list of its own."""
    schema = json.loads((ROOT / "values.schema.json").read_text())
    assert tuple(schema["properties"]["stages"]["items"]["enum"]) == STAGES
    for path in (ROOT / "templates").rglob("*"):
        if path.is_file():
            assert not re.search(r'list\s+"workspace"\s+"sft"', path.read_text()), f"{path.name} lists the stages"
