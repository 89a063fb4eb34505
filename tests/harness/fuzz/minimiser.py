"""A greedy shrinker of failures logged outside Hypothesis by a survey (FUZZ_COLLECT, see
tests/test_fuzz_values.py): one smallest example per kind of problem.

    PYTHONPATH=scripts:tests .venv/bin/python -m harness.fuzz minimize out/fuzz/failures.jsonl
"""

from __future__ import annotations

import json
import math

from .examples import Example
from .oracle import PRESETS, json_arg
from .verdict import check, report


def _simpler_values(v):
    if isinstance(v, str):
        yield from (s for s in ("", "a", v[:1], v[: len(v) // 2], v[1:], v[:-1]) if s != v)
    elif isinstance(v, bool):
        if v:
            yield False
    elif isinstance(v, (int, float)):
        for s in (0, 1, int(v) if isinstance(v, float) and math.isfinite(v) else None, v // 2 if v else None):
            if s is not None and s != v:
                yield s
    elif isinstance(v, list):
        for i in range(len(v)):
            yield v[:i] + v[i + 1 :]
        for i, x in enumerate(v):
            for s in _simpler_values(x):
                yield v[:i] + [s] + v[i + 1 :]
    elif isinstance(v, dict):
        for k in v:
            yield {kk: vv for kk, vv in v.items() if kk != k}
        for k, x in v.items():
            for s in _simpler_values(x):
                yield {**v, k: s}


def minimize(ex: Example, signature: str, budget: int = 300) -> Example:
    """The smallest example (by a greedy pass) that still shows `signature`."""
    calls = 0

    def shows(candidate: Example) -> bool:
        nonlocal calls
        calls += 1
        return any(p.signature == signature for p in check(candidate).problems)

    improved = True
    while improved and calls < budget:
        improved = False
        for preset in PRESETS:  # the first preset that shows it
            if preset == ex.preset:
                break
            cand = Example(preset, ex.overrides)
            if shows(cand):
                ex, improved = cand, True
                break
        for i in range(len(ex.overrides)):  # drop an override
            cand = Example(ex.preset, ex.overrides[:i] + ex.overrides[i + 1 :])
            if calls < budget and shows(cand):
                ex, improved = cand, True
                break
        if improved:
            continue
        for i, (path, text_) in enumerate(ex.overrides):  # simplify a value
            for simpler in _simpler_values(json.loads(text_)):
                if calls >= budget:
                    break
                cand = Example(ex.preset, ex.overrides[:i] + ((path, json_arg(simpler)),) + ex.overrides[i + 1 :])
                if shows(cand):
                    ex, improved = cand, True
                    break
            if improved:
                break
    return ex


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "minimize":
        print(__doc__)
        return 2
    firsts = {}
    for line in open(argv[1]):
        rec = json.loads(line)
        for sig in rec["signatures"]:
            firsts.setdefault(sig, rec)
    for sig, rec in firsts.items():
        ex = minimize(Example.from_json(rec["example"]), sig)
        res = check(ex)
        print(f"=== {sig}")
        print(report(res))
        print()
    return 0
