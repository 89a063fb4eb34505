"""Cluster tier: every preset × stage is accepted by a real API server (with the T9k CRDs).

Two checks per case. `helm install --dry-run=server` resolves every kind against the
server's API (a kind without a CRD fails), runs lookups and the release conflict checks, and
creates nothing. Helm does not send the objects themselves, so the rendered manifest then
goes to the API server as a server-side dry run with strict field validation: admission,
defaulting, built-in validation and the CRDs' openAPIV3Schema judge every object, and an
unknown field is an error, not a silently pruned key.
"""
from __future__ import annotations

import pytest
import yaml

import commands
from chartkit.chart import STAGES, presets

pytestmark = pytest.mark.cluster

CASES = [(p, s) for p in presets() for s in STAGES]


@pytest.mark.parametrize("preset,stage", CASES, ids=[f"{p.removesuffix('.yaml')}-{s}" for p, s in CASES])
def test_every_preset_and_stage_is_accepted_by_the_api_server(tools, namespace, preset, stage):
    release = commands.release_name("dry", preset, stage)
    args = {"values": [f"values/{preset}"], "sets": [f"stages={{{stage}}}"]}
    tools.run(commands.helm_install(tools, release, namespace, dry_run="server", **args))
    manifest = tools.run(commands.helm_template(tools, release, namespace, **args)).stdout
    created = tools.run(commands.kubectl_create_dry_run(tools, namespace), input=manifest).stdout
    # kubectl prints "<kind>/<name> created (server dry run)" for each object it sent.
    objects = [d for d in yaml.safe_load_all(manifest) if d]
    assert created.count("created (server dry run)") == len(objects), created
