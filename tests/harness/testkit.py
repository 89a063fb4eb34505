"""Helpers of the offline test tiers: releases of a preset, stage(s) and
overrides, rendered once per process (chartkit.helm caches)."""

from __future__ import annotations

from chartkit import helm
from chartkit.chart import STAGES, presets
from chartkit.pipeline import pod_templates  # noqa: F401 - the one pod-spec locator, for the tests

PRESETS = presets()
ALL_STAGES = "stages={" + ",".join(STAGES) + "}"


def rel(
    preset: str | None = None,
    stages: str | tuple | None = None,
    *sets: str,
    major: str = "3",
    values: tuple[str, ...] = (),
    name: str = "llama31",
) -> helm.Release:
    """A release of a preset (values/<preset>), the given stage(s) and --set overrides."""
    files = ((f"values/{preset}",) if preset else ()) + tuple(values)
    stage_set = ()
    if stages is not None:
        stage_list = (stages,) if isinstance(stages, str) else stages
        stage_set = ("stages={" + ",".join(stage_list) + "}",)
    return helm.Release(values=files, sets=stage_set + sets, major=major, name=name)


def render(*args, **kwargs) -> tuple[dict, ...]:
    return helm.render(rel(*args, **kwargs))


def load(r: helm.Release):
    """A release rendered as harness.invariants sees it: its objects and the values that made them."""
    from .invariants import Render, values_of

    return Render(helm.render(r), values_of(r.values, r.sets, r.set_json), r.name)


def one(objects, kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]
