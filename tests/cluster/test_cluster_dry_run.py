"""Cluster tier: every preset × stage, rendered by Helm 3 and by Helm 4, is accepted by a real
API server (with the T9k CRDs).

Three checks per case. `helm install --dry-run=server` resolves every kind against the
server's API (a kind without a CRD fails), runs lookups and the release conflict checks, and
creates nothing. Helm does not send the objects themselves, so the rendered manifest then
goes to the API server as a server-side dry run with strict field validation: admission,
defaulting, built-in validation and the CRDs' openAPIV3Schema judge every object, and an
unknown field is an error, not a silently pruned key. Then the release is installed for real
and uninstalled.
"""

from __future__ import annotations

import json

import pytest
import yaml

import commands
from chartkit.chart import STAGES, presets

pytestmark = pytest.mark.cluster

CASES = [(m, p, s) for m in commands.HELM_MAJORS for p in presets() for s in STAGES]


@pytest.mark.parametrize("major,preset,stage", CASES, ids=[f"helm{m}-{p.removesuffix('.yaml')}-{s}" for m, p, s in CASES])
def test_every_preset_and_stage_is_accepted_by_the_api_server(tools_of, namespace, major, preset, stage):
    tools = tools_of(major)
    release = commands.release_name(f"dry{major}", preset, stage)
    args = {"values": [f"values/{preset}"], "sets": [f"stages={{{stage}}}"]}
    tools.run(commands.helm_install(tools, release, namespace, dry_run="server", **args))
    manifest = tools.run(commands.helm_template(tools, release, namespace, **args)).stdout
    created = tools.run(commands.kubectl_create_dry_run(tools, namespace), input=manifest).stdout
    # kubectl prints "<kind>/<name> created (server dry run)" for each object it sent.
    objects = [d for d in yaml.safe_load_all(manifest) if d]
    assert created.count("created (server dry run)") == len(objects), created
    # And for real: the release deploys, then goes (its kept PVC with it, for the next case).
    tools.run(commands.helm_install(tools, release, namespace, **args))
    status = json.loads(tools.run(commands.helm_status(tools, release, namespace)).stdout)
    assert status["info"]["status"] == "deployed", status["info"]
    tools.run(commands.helm_uninstall(tools, release, namespace, wait=False))
    for pvc in (o for o in objects if o["kind"] == "PersistentVolumeClaim"):
        tools.run(
            [tools.kubectl, "--kubeconfig", tools.kubeconfig, "delete", "pvc", "-n", namespace, pvc["metadata"]["name"], "--wait=false"]
        )
