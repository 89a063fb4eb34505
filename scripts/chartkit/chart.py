"""Facts about the chart the harness needs: where it is, its presets and stages."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES_DIR = ROOT / "values"

# The pipeline in order: the one list (values_doc.py writes it into the schema's enum).
STAGES = ("workspace", "sft", "merge-sft", "dpo", "merge-dpo", "eval", "serve")

# Model presets (values files layered alone on the chart); overlays such as
# team-example.yaml (a team's cluster settings) and image-upstream.yaml (LLaMA-Factory's
# published image) are layered on a preset instead.
OVERLAYS = ("team-example.yaml", "image-upstream.yaml")


def presets() -> list[str]:
    """Preset file names under values/, overlays excluded."""
    return sorted(p.name for p in VALUES_DIR.glob("*.yaml") if p.name not in OVERLAYS and not p.name.startswith("ci-"))


# Kinds each stage renders (with the chart's default switches on).
STAGE_KINDS = {
    "workspace": {"PersistentVolumeClaim", "Notebook", "ConfigMap", "Job"},
    "sft": {"ConfigMap", "DeepSpeedJob"},
    "dpo": {"ConfigMap", "DeepSpeedJob"},
    "merge-sft": {"ConfigMap", "Job"},
    "merge-dpo": {"ConfigMap", "Job"},
    "eval": {"ConfigMap", "Job"},
    "serve": {"Deployment", "Service", "Pod"},
}


# libyaml's loader when PyYAML has it: the same documents, several times faster (large files
# such as the CRDs, read at collection, cost seconds with the pure-Python loader).
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str):
    """One YAML document, as yaml.safe_load reads it."""
    return yaml.load(text, Loader=YAML_LOADER)


@functools.cache
def _defaults() -> dict:
    return load_yaml((ROOT / "values.yaml").read_text())


def defaults() -> dict:
    """The chart's values.yaml, read once per process; a copy the caller may change."""
    return copy.deepcopy(_defaults())
