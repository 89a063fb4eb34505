"""Cluster tier: the values fuzzer's offline oracle against the real API server.

A seeded sample of schema-valid examples (harness.fuzz.example: random leaves of values.yaml
over a preset) is rendered and checked offline as tests/test_fuzz_values.py checks it
(fuzz.check: the schema tier, YAML checks and `apiserver_problems`, the offline imitation of
what the API server refuses on sight); whatever rendered then goes to the API server as a
server-side dry run with strict field validation. The two must agree: an object the server
refuses that the offline tiers passed is a hole in them, and an offline "the API server
refuses this" that the server accepts is a false alarm of the imitation.

CLUSTER_FUZZ_EXAMPLES (default 12: each takes about 3 s) examples per run, the same ones every run (derandomized).
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, note, settings

import commands
from harness import fuzz

pytestmark = pytest.mark.cluster

EXAMPLES = int(os.environ.get("CLUSTER_FUZZ_EXAMPLES", "12"))


def server_verdict(tools, namespace: str, objects: list[dict]) -> str | None:
    """None when the API server accepts every object (strict server-side dry run), else why not."""
    # As JSON: re-dumped YAML could change a scalar's type on the way (PyYAML writes Y bare,
    # which kubectl reads as a boolean); the chart's own YAML text is judged offline.
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    proc = tools.run(commands.kubectl_create_dry_run(tools, namespace), input=manifest, check=False)
    return None if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(ex=fuzz.example())
def test_offline_oracle_agrees_with_the_api_server(tools, namespace, ex):
    note(ex.command("3"))
    res = fuzz.check(ex)
    if res.outcome.get("3") != "rendered" or not res.objects:
        return  # refused before any object exists: tests/test_fuzz_values.py judges that
    offline = [p for p in res.problems if p.signature.startswith("apiserver ")]
    others = [p for p in res.problems if not p.signature.startswith("apiserver ")]
    server = server_verdict(tools, namespace, res.objects)
    if server and not res.problems:
        pytest.fail(f"the API server refuses what every offline tier passed:\n{server}\n{ex.command('3')}")
    if offline and not server:
        pytest.fail(
            "apiserver_problems says the API server refuses this, and it accepts it:\n"
            + "\n".join(p.message for p in offline)
            + f"\n{ex.command('3')}"
        )
    del others
