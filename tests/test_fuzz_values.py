"""Tier 4b: property-based tests of the values surface (Hypothesis).

Each example layers overrides of 1-6 random leaves of values.yaml (and, nine
times in ten, a random list of stages; now and then the setting a leaf needs to
matter, e.g. training.rdma.enabled) on one of the presets 8b, 8b-2xdp,
70b-4xdp and 70b-4xdp-qlora, passes them with --set-json and renders with Helm
3 and Helm 4. Strategies come from values.schema.json node by node
(tests/harness/fuzz/). The oracle is jsonschema on the values Helm merges (chart
defaults, preset, --set-json; null deletes a default key):

  * values the schema accepts render, or fail with the chart's own message
    ("llama-factory: invalid values", every line naming a field and a fix);
    never a Go template error, never a YAML parse error;
  * what renders passes the schema tier (chartkit.k8s.errors for every version
    in K8S_VERSIONS, a missing schema failing), has no duplicate YAML keys and
    no plain scalar that PyYAML and go-yaml read as different types, and
    nothing the API server refuses on sight (duplicate volumes or mount paths,
    a Deployment selector that misses its pods);
  * what renders from schema-valid values keeps every invariant of
    tests/harness/invariants/ (path chain, GPU arithmetic, launcher, ConfigMap
    and volume wiring, secret flow, vLLM routes, served model, labels; the
    API-server rules run with the checks above), as the presets and every
    changed leaf do (test_invariants.py, test_values_surface.py);
  * Helm 3 and 4 agree: the same objects, or the same kind of failure;
  * values the schema rejects (a wrong type, a broken bound/pattern/enum, an
    unknown key) fail with "values don't meet the specifications of the schema".

What the fuzzer found is pinned in FOUND as explicit examples, run first every
time (a failing one stops the run before any random example).

Profiles (env FUZZ_PROFILE):
  unset (CI)  30 + 10 examples (plus FOUND), derandomized: every run
              checks the same examples, so CI stays reproducible (the module
              takes about 17 s on 2 cores while no property fails).
  long        FUZZ_EXAMPLES examples in all (default 2000; 3/4 valid, 1/4
              invalid), random seed (--hypothesis-seed=N to repeat one),
              failures kept in .hypothesis/ and replayed first next time.
A long run (one failure per kind of bug, each shrunk to a minimal example):

    FUZZ_PROFILE=long .venv/bin/python -m pytest tests/test_fuzz_values.py \\
        -p no:cacheprovider --hypothesis-show-statistics

Survey mode: FUZZ_COLLECT=out/fuzz/failures.jsonl logs every failing example
instead of failing, so that one run spends its whole budget exploring; then
shrink one example per kind of bug with

    PYTHONPATH=scripts:tests .venv/bin/python -m harness.fuzz minimize out/fuzz/failures.jsonl

The free-form nodes the chart copies verbatim into pods (affinity,
tolerations, security contexts, extra volume sources, valueFrom; the schema
says only "object") get valid Kubernetes fragments and small dicts with
Kubernetes' field names in wrong shapes (FUZZ_PASSTHROUGH=mixed, the long
profile's default); FUZZ_PASSTHROUGH=k8s (CI's default) draws only the valid fragments (to hunt other
bugs while that schema gap stands), FUZZ_PASSTHROUGH=raw only the dicts.
"""

import collections
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from hypothesis import strategies as st

from harness import fuzz

PROFILE = os.environ.get("FUZZ_PROFILE", "ci")
# The CI profile draws only valid Kubernetes fragments for the free-form nodes that are still
# typed "object" (see Open below): whether its fixed examples reach a wrong shape must not
# decide CI. The long profile (make fuzz) draws both.
fuzz.passthrough.PASSTHROUGH_MODE = os.environ.get("FUZZ_PASSTHROUGH", "mixed" if PROFILE == "long" else "k8s")
if fuzz.passthrough.PASSTHROUGH_MODE not in ("mixed", "k8s", "raw"):
    raise pytest.UsageError("FUZZ_PASSTHROUGH: mixed (the long profile's default), k8s (CI's) or raw")
COLLECT = os.environ.get("FUZZ_COLLECT")
if PROFILE == "long":
    TOTAL = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
    VALID_N, INVALID_N = TOTAL * 3 // 4, TOTAL - TOTAL * 3 // 4
    RANDOM = dict(derandomize=False)  # failures kept in Hypothesis's database, .hypothesis/ (self-gitignored)
elif PROFILE == "ci":
    VALID_N, INVALID_N = 30, 10
    RANDOM = dict(derandomize=True, database=None)
else:
    raise pytest.UsageError(f"FUZZ_PROFILE={PROFILE!r}: use 'long' or leave it unset")

# No explain phase: it re-runs examples (each two Helm runs) to list covered lines.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
SETTINGS = dict(
    deadline=None,
    print_blob=PROFILE == "long",
    phases=PHASES,
    **RANDOM,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
STATS = collections.Counter()

_FAILURE_TYPES: dict[str, type] = {}


def failure(signature: str) -> type:
    """One exception type per kind of bug, so that Hypothesis keeps them apart
    (and shrinks each) instead of stopping at the first."""
    if signature not in _FAILURE_TYPES:
        _FAILURE_TYPES[signature] = type("ChartFuzzFailure", (AssertionError,), {"signature": signature})
    return _FAILURE_TYPES[signature]


def verify(ex: fuzz.Example, expect_valid: bool) -> None:
    note(ex.command("3"))
    res = fuzz.check(ex)
    label = fuzz.outcome_label(res)
    event(label)
    STATS[label] += 1
    STATS["examples"] += 1
    if res.valid != expect_valid:
        # The strategy missed (e.g. a drawn value that the schema refuses after all);
        # the example is still checked against the oracle's verdict.
        event("strategy missed the intended validity")
    if not res.problems:
        return
    STATS["failing"] += 1
    for sig in {p.signature for p in res.problems}:
        STATS[f"problem: {sig}"] += 1
    if COLLECT:
        path = Path(COLLECT)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(
                json.dumps(
                    {"example": ex.to_json(), "signatures": sorted({p.signature for p in res.problems}), "report": fuzz.report(res)},
                    ensure_ascii=False,
                )
                + "\n"
            )
        return
    sig = res.problems[0].signature
    raise failure(sig)(f"[{sig}]\n{fuzz.report(res)}")


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    import time

    start = time.monotonic()
    yield
    secs = time.monotonic() - start
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture and STATS["examples"]:
        with capture.global_and_fixture_disabled():
            print(
                f"\nfuzz ({PROFILE}): {STATS['examples']} examples rendered and checked in {secs:.0f} s "
                f"({STATS['examples'] / secs:.1f} examples/s), {STATS['failing']} failing"
            )
    if COLLECT:
        Path(COLLECT).with_suffix(".stats.json").write_text(json.dumps(STATS, indent=1, sort_keys=True))


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(fuzz.NON_STAGE_LEAVES).flatmap(lambda p: st.tuples(st.just(p), fuzz.leaf_strategy(p))))
def test_leaf_strategies_draw_what_the_schema_accepts(leaf):
    """The generator itself (no Helm): every drawn leaf value is valid for its node."""
    path, value = leaf
    errs = [e.message for e in fuzz.node_validator(fuzz.node_at(path)).iter_errors(value)]
    assert not errs, f"{'.'.join(path)}={json.dumps(value)}: {errs}"


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(fuzz.PRESETS), fuzz.invalid_override())
def test_invalid_overrides_break_the_schema(preset, override):
    """The generator itself (no Helm): a deliberate violation survives Helm's merge."""
    ex = fuzz.Example(preset, (override,))
    assert fuzz.schema_errors(fuzz.merged_values(ex)), f"{ex.command()} is valid"


def test_presets_pass_every_check():
    """The properties hold for the presets themselves, every stage on."""
    stages = ("stages", json.dumps(list(fuzz.STAGES)))
    for preset in fuzz.PRESETS:
        res = fuzz.check(fuzz.Example(preset, (stages,)))
        assert res.valid and res.outcome == {"3": "rendered", "4": "rendered"}, fuzz.report(res)
        assert not res.problems, fuzz.report(res)


def pinned(preset: str, **overrides) -> fuzz.Example:
    return fuzz.Example.from_json({"preset": preset, "overrides": [[k.replace("__", "."), v] for k, v in overrides.items()]})


# What the fuzzer found, pinned as explicit examples: they run first, every time,
# whatever the profile. (Some are schema-invalid since their fix: then they must
# fail with the schema's message.)
FOUND = [
    pinned("8b.yaml", nameOverride="true"),  # label rendered as a boolean
    pinned("8b.yaml", stages=["workspace"], download__activeDeadlineSeconds=1000000),  # 1e+06
    pinned("8b.yaml", common__podLabels={"app.kubernetes.io/name": "a"}),  # duplicate label key
    pinned("8b.yaml", stages=["workspace"], storage__annotations={"helm.sh/resource-policy": "delete"}),
    pinned("8b.yaml", images__llamaFactory__registry="!"),  # a YAML tag in image:
    pinned("8b.yaml", stages=["merge-sft"], storage__mountPath="/\u0015"),  # control character
    pinned("8b.yaml", common__extraVolumes={"cache": {"mountPath": "/dev/shm", "source": {"emptyDir": {}}}}),
    pinned("8b.yaml", common__extraVolumes={"dshm": {"mountPath": "/cache", "source": {"emptyDir": {}}}}),
    pinned(
        "8b.yaml", training__rdma__enabled=True, common__containerSecurityContext={"capabilities": {"add": "IPC_LOCK"}}
    ),  # template crash
    pinned("8b.yaml", training__rdma__enabled=True, training__rdma__resourceName="a9Hn/P"),  # resource prefix
    pinned("8b.yaml", stages=["workspace"], merge__resources__requests__cpu=1000000),  # 1e+06 cores: not compared
]
# Open: free-form Kubernetes fragments (pod security context, affinity, volume sources,
# valueFrom) are typed only "object" in values.schema.json, so a malformed one renders an
# invalid manifest, e.g. common.podSecurityContext={"capabilities": {"drop": ["ALL"]}}. The CI
# profile does not draw them (FUZZ_PASSTHROUGH=k8s); FUZZ_PROFILE=long finds them. Tolerations
# are typed since a CI run drew common.tolerations=[{"value": []}].


def _with_found(test):
    for ex in reversed(FOUND):
        test = example(ex)(test)
    return test


@settings(max_examples=VALID_N, **SETTINGS)
@_with_found
@given(fuzz.example())
def test_schema_valid_values_render_or_fail_by_rule(ex):
    verify(ex, expect_valid=True)


@settings(max_examples=INVALID_N, **SETTINGS)
@given(fuzz.invalid_example())
def test_schema_invalid_values_fail_the_schema_check(ex):
    verify(ex, expect_valid=False)
