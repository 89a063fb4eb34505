"""Cluster tier: the training stages' objects as the API server keeps them, and the chart's
upgrade policy (job names end in a hash of their content).

No T9k operator runs, so a DeepSpeedJob is checked for acceptance and content, not progress:
the live DeepSpeedJob's spec must equal the rendered one exactly (a CRD that pruned or
defaulted a field would show here) and its ConfigMap must hold the rendered files.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

import commands
import waits
from chartkit.chart import presets
from kube import by_kind, diff, render, selector

pytestmark = pytest.mark.cluster

DJ = ("batch.tensorstack.dev/v1beta1", "deepspeedjobs")


def live_jobs(kube, ns, release, stage) -> list[dict]:
    return kube.customs(ns, DJ[0], DJ[1], selector(release, stage))


def assert_matches_render(kube, ns, rendered: list[dict]) -> None:
    """Every rendered DeepSpeedJob and ConfigMap exists with the rendered content."""
    problems = []
    for want in by_kind(rendered, "DeepSpeedJob"):
        name = want["metadata"]["name"]
        have = kube.custom(ns, DJ[0], DJ[1], name)
        if have is None:
            problems.append(f"DeepSpeedJob/{name}: missing")
            continue
        problems += [f"DeepSpeedJob/{name} spec{d}" for d in diff(want["spec"], have["spec"], exact=True)]
        problems += [f"DeepSpeedJob/{name} labels{d}" for d in diff(want["metadata"]["labels"], have["metadata"].get("labels", {}))]
    for want in by_kind(rendered, "ConfigMap"):
        name = want["metadata"]["name"]
        have = kube.configmap(ns, name)
        if have is None:
            problems.append(f"ConfigMap/{name}: missing")
            continue
        problems += [f"ConfigMap/{name} data{d}" for d in diff(want["data"], have.get("data") or {}, exact=True)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stage", ["sft", "dpo"])
@pytest.mark.parametrize("preset", presets())
def test_training_stage_objects_hold_the_rendered_spec(tools, kube, namespace, preset, stage):
    release = commands.release_name(stage, preset)
    args = {"values": [f"values/{preset}"], "sets": [f"stages={{{stage}}}"]}
    tools.run(commands.helm_install(tools, release, namespace, **args))
    rendered = render(tools, release, namespace, **args)
    assert len(by_kind(rendered, "DeepSpeedJob")) == 1
    assert_matches_render(kube, namespace, rendered)
    assert len(live_jobs(kube, namespace, release, stage)) == 1


def test_upgrade_replaces_a_changed_job_and_rollback_restores_it(tools, kube, namespace):
    """A changed hyperparameter makes a new DeepSpeedJob (new hash, no immutable-field error)
    and removes the old one; an upgrade that changes nothing leaves the job alone; a rollback
    brings back the first job."""
    release, stage = "hash-sft", "sft"
    base = {"values": ["values/8b.yaml"], "sets": [f"stages={{{stage}}}"]}
    changed = {**base, "set_json": ["sft.learningRate=2e-5"]}
    pattern = re.compile(rf"^{re.escape(release)}-llama-factory-sft-[0-9a-f]{{8}}$")

    def one_job(name_wanted: str | None = None, name_unwanted: str | None = None) -> dict:
        def state(dj):
            name = dj["metadata"]["name"]
            if name_wanted and name != name_wanted or name_unwanted and name == name_unwanted:
                return waits.RUNNING
            return waits.SUCCEEDED

        (dj,) = waits.wait_for(
            lambda: live_jobs(kube, namespace, release, stage),
            state,
            what=f"the one DeepSpeedJob of release {release}",
            count=1,
            timeout=120,
        )
        return dj

    tools.run(commands.helm_install(tools, release, namespace, **base))
    first = one_job()
    assert pattern.match(first["metadata"]["name"]), first["metadata"]["name"]

    tools.run(commands.helm_upgrade(tools, release, namespace, **base))
    same = one_job(name_wanted=first["metadata"]["name"])
    assert same["metadata"]["uid"] == first["metadata"]["uid"], "an unchanged upgrade replaced the job"

    tools.run(commands.helm_upgrade(tools, release, namespace, **changed))
    second = one_job(name_unwanted=first["metadata"]["name"])
    assert pattern.match(second["metadata"]["name"]), second["metadata"]["name"]
    upgraded = render(tools, release, namespace, **changed)
    assert_matches_render(kube, namespace, upgraded)
    cm = kube.configmap(namespace, f"{release}-llama-factory-sft-config")
    assert yaml.safe_load(cm["data"]["train.yaml"])["learning_rate"] == 2e-5

    tools.run(commands.helm_rollback(tools, release, namespace, 1))
    back = one_job(name_wanted=first["metadata"]["name"])
    assert_matches_render(kube, namespace, render(tools, release, namespace, **base))
    assert back["metadata"]["name"] == first["metadata"]["name"]
    history = json.loads(tools.run(commands.helm_history(tools, release, namespace)).stdout)
    assert [h["status"] for h in history][-1] == "deployed", history
    assert "Rollback to 1" in history[-1]["description"], history[-1]

    tools.run(commands.helm_uninstall(tools, release, namespace))
    assert live_jobs(kube, namespace, release, stage) == []
