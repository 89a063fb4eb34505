"""Examples: a preset and overrides of random leaves (`example()`), or with one override the
schema rejects (`invalid_example()`), and the Helm command line that renders one."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from hypothesis import strategies as st

from chartkit import helm
from chartkit.chart import STAGES

from .oracle import LEAVES, PRESETS, RELEASE, json_arg
from .strategies import invalid_override, leaf_strategy


@dataclass(frozen=True)
class Example:
    preset: str
    overrides: tuple[tuple[str, str], ...]  # (dotted path, JSON text)

    def set_json(self) -> tuple[str, ...]:
        return tuple(f"{p}={t}" for p, t in self.overrides)

    def release(self, major: str) -> helm.Release:
        return helm.Release(values=(f"values/{self.preset}",), set_json=self.set_json(), major=major, name=RELEASE)

    def command(self, major: str = "3") -> str:
        args = [f".tools/bin/helm{major}", "template", RELEASE, ".", "-f", f"values/{self.preset}"]
        for s in self.set_json():
            args += ["--set-json", s]
        return " ".join(shlex.quote(a) for a in args)

    def to_json(self) -> dict:
        return {"preset": self.preset, "overrides": [[p, json.loads(t)] for p, t in self.overrides]}

    @staticmethod
    def from_json(d: dict) -> Example:
        return Example(d["preset"], tuple((p, json_arg(v)) for p, v in d["overrides"]))


# Leaves that show only under another setting (as in tests/test_values_surface.py).
COMPANIONS = {
    ("training", "multiWorkerSecurityContext"): {"training.workers": 2},
    ("common", "containerSecurityContext"): {"training.rdma.enabled": True},
    ("training", "rdma", "resourceName"): {"training.rdma.enabled": True},
    ("serving", "maxLoras"): {"serving.lora": True, "serving.model": "sft"},
    ("model", "modelscopeRepo"): {"model.source": "modelscope"},
    ("merge", "gpus"): {"merge.exportDevice": "auto"},
    ("notebook", "ssh", "authorizedKeys"): {"notebook.ssh.enabled": True},
    ("notebook", "ssh", "serviceType"): {"notebook.ssh.enabled": True},
    ("serving", "apiKey", "key"): {"serving.apiKey.existingSecret": "api-key"},
    ("common", "huggingface", "tokenKey"): {"common.huggingface.existingSecret": "hf-token"},
    ("common", "scheduler", "priority"): {"common.scheduler.queue": "team"},
    ("sft", "scheduling", "priority"): {"sft.scheduling.queue": "team"},
    ("dpo", "scheduling", "priority"): {"dpo.scheduling.queue": "team"},
}
STAGE_LISTS = st.lists(st.sampled_from(STAGES), min_size=1, max_size=len(STAGES), unique=True)
NON_STAGE_LEAVES = tuple(p for p in LEAVES if p != ("stages",))


@st.composite
def overrides(draw, min_size: int = 1, max_size: int = 6) -> list[tuple[str, str]]:
    # Indices, not lists(sampled_from(...), unique=True): that draws the first few leaves in
    # a fifth of all examples. Each index shrinks on its own (towards `global`, a no-op).
    idx = draw(st.lists(st.integers(0, len(NON_STAGE_LEAVES) - 1), min_size=min_size, max_size=max_size, unique=True))
    paths = [NON_STAGE_LEAVES[i] for i in idx]
    out = []
    for p in paths:
        out.append((".".join(p), json_arg(draw(leaf_strategy(p)))))
    for p in paths:  # settings that make a drawn leaf matter, half of the time
        for path, value in COMPANIONS.get(p, {}).items():
            if path not in {o[0] for o in out} and draw(st.booleans()):
                out.append((path, json_arg(value)))
    return out


@st.composite
def example(draw) -> Example:
    """A preset, usually a random set of stages, and 1-6 overridden leaves."""
    preset = draw(st.sampled_from(PRESETS))
    ovs = []
    if draw(st.integers(0, 9)) < 9:
        ovs.append(("stages", json_arg(draw(STAGE_LISTS))))
    ovs += draw(overrides())
    return Example(preset, tuple(ovs))


@st.composite
def invalid_example(draw) -> Example:
    """An example with one override the schema rejects among 0-3 valid ones."""
    preset = draw(st.sampled_from(PRESETS))
    ovs = [("stages", json_arg(draw(STAGE_LISTS)))] + draw(overrides(min_size=0, max_size=3))
    bad = draw(invalid_override())
    ovs = [o for o in ovs if not (o[0] == bad[0] or o[0].startswith(bad[0] + ".") or bad[0].startswith(o[0] + "."))]
    ovs.insert(draw(st.integers(0, len(ovs))), bad)
    return Example(preset, tuple(ovs))
