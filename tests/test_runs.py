"""Runs (values: run): several experiments on one model and PVC never share a directory, and
each run's stages read that run's outputs. The default (no run) keeps the walkthrough's paths."""

from __future__ import annotations

import pytest

from chartkit import helm
from chartkit.pipeline import stage_io
from harness.testkit import PRESETS, rel

TRAINED = ("sft", "merge-sft", "dpo", "merge-dpo", "eval")


def io(preset: str, stage: str, run: str | None):
    sets = (f"run={run}",) if run is not None else ()
    return stage_io(stage, helm.render(rel(preset, stage, *sets)))


def test_no_run_keeps_the_walkthrough_paths():
    writes = {s: io("8b.yaml", s, None).writes for s in TRAINED}
    assert writes == {
        "sft": ["/t9k/mnt/saves/Meta-Llama-3.1-8B/lora/sft"],
        "merge-sft": ["/t9k/mnt/models/Meta-Llama-3.1-8B-sft"],
        "dpo": ["/t9k/mnt/saves/Meta-Llama-3.1-8B/lora/dpo"],
        "merge-dpo": ["/t9k/mnt/models/Meta-Llama-3.1-8B-dpo"],
        "eval": ["/t9k/mnt/evals/Meta-Llama-3.1-8B/dpo"],
    }
    assert writes == {s: io("8b.yaml", s, "").writes for s in TRAINED}


@pytest.mark.parametrize("preset", PRESETS)
def test_runs_never_share_a_directory_and_read_their_own_outputs(preset):
    runs = {name: {s: io(preset, s, name) for s in TRAINED} for name in ("", "lr-2e-5", "lr-1e-4")}
    written = {name: {p for s in stages.values() for p in s.writes} for name, stages in runs.items()}
    for a in runs:
        for b in runs:
            if a < b:
                clash = {p for p in written[a] for q in written[b] if p == q or p.startswith(q + "/") or q.startswith(p + "/")}
                assert not clash, f"runs {a!r} and {b!r} both write {clash}"
    for name, stages in runs.items():
        # Every input of a run's stage that another stage writes is written by this run.
        for stage, s in stages.items():
            for path in s.reads:
                writers = [r for r, w in written.items() if path in w]
                assert writers in ([], [name]), f"run {name!r} {stage} reads {path}, written by runs {writers}"
        assert stages["merge-sft"].reads[1] == stages["sft"].writes[0]
        assert stages["merge-dpo"].reads[1] == stages["dpo"].writes[0]
        assert stages["eval"].reads[0] == stages["merge-dpo"].writes[0]
