#!/usr/bin/env python3
"""Validate the GitHub Actions workflows offline.

    python scripts/check_workflows.py                 # every .github/workflows/*.yml|yaml
    python scripts/check_workflows.py FILE ...

Checks, each failure one line:
  yaml     the file parses as YAML, with no key given twice in one mapping (GitHub would
           silently keep one of them);
  schema   the GitHub workflow JSON schema that the check-jsonschema package vendors
           (`--builtin-schema vendor.github-workflows`: no network);
  pins     every `uses:` names a full 40-hex commit with its release tag in a comment
           (`@<sha> # v1.2.3`), no runner image is `*-latest`, helm/kind-action gets exact kind
           and kubectl versions, setup-python an explicit python-version, and every kind node
           image (in the workflow or the scripts it runs) carries a digest;
  paths    scripts/, values/ and tests/ paths in `run:` steps exist (scripts executable).

Exit status: 0 clean, 1 problems (listed), 2 check-jsonschema is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
SCHEMA = "vendor.github-workflows"
SHA = re.compile(r"^[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
TAG_COMMENT = re.compile(r"^v?\d+(\.\d+){1,2}\b")
EXACT_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
LOCAL_PATH = re.compile(r"(?<![\w./-])((?:scripts|values|tests)/[\w./-]*[\w-])")
NODE_IMAGE = re.compile(r"kindest/node:[\w.-]+(?P<digest>@sha256:[0-9a-f]{64})?")


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a key given twice."""


def _mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(path: Path) -> tuple[dict | None, list[str]]:
    try:
        doc = yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        return None, [f"{path.name}: yaml: {' '.join(str(e).split())}"]
    if not isinstance(doc, dict):
        return None, [f"{path.name}: yaml: the file is not a mapping"]
    return doc, []


def schema_problems(paths: list[Path]) -> list[str]:
    """Run check-jsonschema with its vendored workflow schema; one line per reported error."""
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMA, "--output-format", "text", *map(str, paths)],
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return []
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return [f"schema: {line}" for line in lines if not line.startswith("Schema validation errors")] or [
        f"schema: check-jsonschema exited {proc.returncode}"
    ]


def steps(doc: dict):
    for job_id, job in (doc.get("jobs") or {}).items():
        for i, step in enumerate((job or {}).get("steps") or []):
            yield job_id, i, step or {}


def pin_problems(path: Path, doc: dict, text: str) -> list[str]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = USES_LINE.match(line)
        if not m:
            continue
        ref = m["ref"].strip("'\"")
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                out.append(f"{path.name}:{n}: {ref}: pin the image by digest (@sha256:...)")
            continue
        _, _, version = ref.partition("@")
        if not SHA.match(version):
            out.append(f"{path.name}:{n}: {ref}: pin the action to a full commit SHA, not {version or 'nothing'!r}")
        elif not (m["comment"] and TAG_COMMENT.match(m["comment"].strip())):
            out.append(f"{path.name}:{n}: {ref}: say which release the SHA is in a comment (# v1.2.3)")
    for job_id, job in (doc.get("jobs") or {}).items():
        runs_on = (job or {}).get("runs-on")
        for label in [runs_on] if isinstance(runs_on, str) else runs_on or []:
            if isinstance(label, str) and label.endswith("-latest"):
                out.append(f"{path.name}: jobs.{job_id}.runs-on: {label} moves; name the image (e.g. ubuntu-24.04)")
    for job_id, i, step in steps(doc):
        uses, given = str(step.get("uses", "")), step.get("with") or {}
        where = f"{path.name}: jobs.{job_id}.steps[{i}]"
        if uses.startswith("helm/kind-action@"):
            for key in ("version", "kubectl_version"):
                value = str(given.get(key, ""))
                if not (EXACT_VERSION.match(value) or value.startswith("${{")):
                    out.append(f"{where}: helm/kind-action needs an exact {key} (vX.Y.Z), got {value or 'none'!r}")
        if uses.startswith("actions/setup-python@") and not given.get("python-version"):
            out.append(f"{where}: actions/setup-python needs an explicit python-version")
    return out


def referenced_files(doc: dict) -> list[str]:
    found = []
    for _, _, step in steps(doc):
        found += LOCAL_PATH.findall(str(step.get("run", "")))
    return sorted(set(found))


def path_problems(path: Path, doc: dict, root: Path) -> list[str]:
    out = []
    for ref in referenced_files(doc):
        target = root / ref
        if any(ch in ref for ch in "*?"):
            continue
        if not target.exists():
            out.append(f"{path.name}: run step names {ref}, which does not exist")
        elif ref.startswith("scripts/") and target.suffix in ("", ".sh") and not os.access(target, os.X_OK):
            out.append(f"{path.name}: run step runs {ref}, which is not executable (chmod +x)")
    return out


def image_problems(path: Path, doc: dict, text: str, root: Path) -> list[str]:
    """kind node images, in the workflow and in the scripts its run steps name, need a digest."""
    sources = [(path.name, text)] + [
        (ref, (root / ref).read_text()) for ref in referenced_files(doc) if ref.startswith("scripts/") and (root / ref).is_file()
    ]
    return [
        f"{name}: {m.group(0)}: pin the kind node image by digest (@sha256:...)"
        for name, body in sources
        for m in NODE_IMAGE.finditer(body)
        if not m["digest"]
    ]


def check(paths: list[Path], root: Path = ROOT, schema: bool = True) -> list[str]:
    problems: list[str] = []
    loaded = []
    for path in paths:
        doc, errors = load(path)
        problems += errors
        if doc is not None:
            text = path.read_text()
            loaded.append(path)
            problems += pin_problems(path, doc, text) + path_problems(path, doc, root) + image_problems(path, doc, text, root)
    if schema and loaded:
        problems += schema_problems(loaded)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    args = ap.parse_args(argv)
    if importlib.util.find_spec("check_jsonschema") is None:
        print("check_workflows: check-jsonschema is not installed (pip install check-jsonschema)", file=sys.stderr)
        return 2
    paths = args.files or sorted(p for p in WORKFLOWS.glob("*") if p.suffix in (".yml", ".yaml"))
    if not paths:
        print(f"check_workflows: no workflow files in {WORKFLOWS}", file=sys.stderr)
        return 1
    problems = check(paths)
    for p in problems:
        print(p)
    if not problems:
        print(
            f"check_workflows: {len(paths)} workflow file(s) valid: "
            + ", ".join(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths)
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
