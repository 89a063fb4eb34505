"""Property-based fuzzing of the values surface (tests/test_fuzz_values.py), one namespace
(`from harness import fuzz`) over modules by concern:

  * `scalars`, `passthrough`, `strategies`: Hypothesis strategies derived from
    values.schema.json node by node (type, enum, bounds, pattern via
    from_regex(fullmatch=True), lengths, arrays, objects, propertyNames, oneOf),
    salted with strings YAML reads as other types and with names the chart itself
    uses; the free-form nodes the chart copies into pods get Kubernetes fragments
    (`passthrough.PASSTHROUGH_MODE`). hypothesis-jsonschema is not used: 0.23.1 fails
    on this schema's object nodes with the current Hypothesis ('many' object has no
    attribute 'more').
  * `examples`: `example()` draws a preset plus overrides of 1-6 leaves (and usually
    `stages`), `invalid_example()` adds one deliberate violation (wrong type, broken
    constraint, unknown key).
  * `oracle`: Helm's merge of chart defaults, preset and --set-json (`merged_values`:
    maps merge, --set-json replaces its leaf, null deletes a key the chart defaults
    hold) validated with jsonschema, `$` read as Go's end of text (`schema_errors`).
  * `verdict` (with `yamlcheck`): the verdict of one example rendered with Helm 3 and 4
    (`check`): a list of Problems, each with a signature stable under shrinking, so
    that Hypothesis keeps distinct bugs apart and shrinks each. Beyond the Kubernetes
    schema tier it flags duplicate YAML keys, plain scalars PyYAML and go-yaml read as
    different types, and what the API server refuses on sight.
  * `minimiser`: a greedy shrinker of failures logged by a survey (FUZZ_COLLECT, see
    the test module):
        PYTHONPATH=scripts:tests .venv/bin/python -m harness.fuzz minimize out/fuzz/failures.jsonl
"""

from __future__ import annotations

from chartkit.chart import STAGES

from . import passthrough
from .examples import COMPANIONS, NON_STAGE_LEAVES, Example, example, invalid_example, overrides
from .minimiser import minimize
from .oracle import (
    CLOSED_OBJECTS,
    DEFAULTS,
    LEAVES,
    PRESETS,
    RELEASE,
    SCHEMA,
    go_pattern,
    json_arg,
    merged_values,
    node_at,
    node_validator,
    schema_errors,
)
from .strategies import invalid_override, leaf_strategy, valid
from .verdict import (
    Problem,
    Result,
    apiserver_problems,
    check,
    classify,
    invariant_problems,
    manifest_problems,
    outcome_label,
    report,
)
from .yamlcheck import go_kind, load

__all__ = [
    "STAGES",
    "passthrough",
    "COMPANIONS",
    "NON_STAGE_LEAVES",
    "Example",
    "example",
    "invalid_example",
    "overrides",
    "minimize",
    "CLOSED_OBJECTS",
    "DEFAULTS",
    "LEAVES",
    "PRESETS",
    "RELEASE",
    "SCHEMA",
    "go_pattern",
    "json_arg",
    "merged_values",
    "node_at",
    "node_validator",
    "schema_errors",
    "invalid_override",
    "leaf_strategy",
    "valid",
    "Problem",
    "Result",
    "apiserver_problems",
    "check",
    "classify",
    "invariant_problems",
    "manifest_problems",
    "outcome_label",
    "report",
    "go_kind",
    "load",
]
