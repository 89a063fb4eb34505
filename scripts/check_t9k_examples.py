#!/usr/bin/env python3
"""Check the T9k schemas of tests/schemas/ against real T9k manifests (run once,
outside the test suite; the manifests are not part of this repository).

Every DeepSpeedJob and Notebook in the examples folder is validated. A
manifest that uses a legacy or mistyped spelling listed in the T9k notes
(kind DeepspeedJob, slotPerWorker, `enable` instead of `enabled`, a scalar
run.python, Notebook runMode) must fail; every other manifest must pass.
Helm templates (paths with chart__templates) are skipped.

    python scripts/check_t9k_examples.py ../shared/reference/t9k/examples
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from chartkit import k8s

KINDS = {
    "DeepSpeedJob": ("batch.tensorstack.dev/v1beta1", "DeepSpeedJob"),
    "DeepspeedJob": ("batch.tensorstack.dev/v1beta1", "DeepSpeedJob"),
    "Notebook": ("tensorstack.dev/v1beta1", "Notebook"),
}


def legacy_markers(doc: dict) -> list[str]:
    """The legacy or mistyped spellings of NOTES.md a manifest uses."""
    found = []
    if doc.get("kind") == "DeepspeedJob":
        found.append("kind DeepspeedJob")
    spec = doc.get("spec") or {}

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "enable":
                    found.append(f"{path}.enable")
                if k == "slotPerWorker":
                    found.append(f"{path}.slotPerWorker")
                if path.endswith("template") and k in ("spec", "metadata"):
                    continue  # pod templates are Kubernetes, not T9k
                walk(v, f"{path}.{k}")

    walk(spec, "spec")
    run = (spec.get("config") or {}).get("run") or {}
    for k in ("python", "module", "exec"):
        if k in run and not isinstance(run[k], list):
            found.append(f"scalar run.{k}")
    if doc.get("kind") == "Notebook" and "runMode" in spec:
        found.append("Notebook runMode")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "../shared/reference/t9k/examples")
    version = k8s.K8S_VERSIONS[-1]
    counts = {"current, pass": 0, "current, FAIL": 0, "legacy, fail": 0, "legacy, PASS": 0}
    unexpected = []
    sources = [
        (p, p.read_text()) for p in sorted(root.rglob("*.yaml")) if "chart__templates" not in p.name and "/chart/templates/" not in str(p)
    ]
    # The YAML snippets of the API and module docs beside the examples (where
    # the documented typos live).
    for md in sorted((root.parent / "api").glob("*.md")) + sorted(root.parent.glob("*.md")):
        for i, block in enumerate(re.findall(r"```ya?ml\n(.*?)```", md.read_text(), re.S)):
            sources.append((md.with_name(f"{md.name}#{i}"), block))
    for path, text in sources:
        try:
            docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        except yaml.YAMLError as e:
            print(f"unparsable (not YAML, e.g. a template): {path.relative_to(root.parent)}: {str(e).splitlines()[0]}")
            continue
        for doc in docs:
            if doc.get("kind") not in KINDS or not isinstance(doc.get("spec"), dict):
                continue  # other kinds, and trimmed snippets without a spec
            api, kind = KINDS[doc["kind"]]
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in k8s.validator(api, kind, version).iter_errors(doc)]
            legacy = legacy_markers(doc)
            key = ("legacy, " if legacy else "current, ") + (("fail" if legacy else "FAIL") if errors else ("PASS" if legacy else "pass"))
            counts[key] += 1
            if key in ("current, FAIL", "legacy, PASS"):
                unexpected.append(f"{key}: {path.relative_to(root.parent)} {legacy} {errors[:3]}")
    print(f"T9k schema check against {root} (Kubernetes {version} pod definitions):")
    for k, n in counts.items():
        print(f"  {k:<14} {n}")
    for u in unexpected:
        print("  unexpected:", u)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
