#!/usr/bin/env python3
"""chart-testing's `ct lint` rules, offline (ct itself is a Go binary CI would download):

  python scripts/chart_lint.py                 # yamllint + Chart.yaml schema
  python scripts/chart_lint.py --base main     # ... and the version bump against a git ref

- yamllint with ct's own configuration (ci/lintconf.yaml) over Chart.yaml, values.yaml and the
  values files (values/, ci/, tests/values/);
- Chart.yaml against ct's chart schema (etc/chart_schema.yaml, written here as JSON Schema),
  plus what ct's maintainer check and Artifact Hub need: at least one maintainer, home, icon,
  sources, a license annotation;
- the version bump: when a file of the packaged chart (one `.helmignore` keeps in) differs from
  the base ref, Chart.yaml's version must be higher than the base's. ct compares every file under
  the chart directory; this chart is the repository root, so the harness (tests/, scripts/, ...)
  is left out the way `helm package` leaves it out.
Exit 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import fnmatch
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
LINTCONF = ROOT / "ci" / "lintconf.yaml"

_STR_LIST = {"type": "array", "items": {"type": "string"}}
CHART_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "name", "version", "maintainers", "home", "icon", "sources", "annotations"],
    "properties": {
        "name": {"type": "string"},
        "home": {"type": "string", "pattern": "^https://"},
        "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$"},
        "apiVersion": {"const": "v2"},
        "appVersion": {"type": ["string", "number"]},
        "description": {"type": "string"},
        "keywords": _STR_LIST,
        "sources": {**_STR_LIST, "minItems": 1},
        "maintainers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "email": {"type": "string"},
                    "url": {"type": "string", "pattern": "^https://"},
                },
            },
        },
        "dependencies": {"type": "array"},
        "icon": {"type": "string", "pattern": "^https://"},
        "engine": {"type": "string"},
        "condition": {"type": "string"},
        "tags": {"type": "string"},
        "deprecated": {"type": "boolean"},
        "kubeVersion": {"type": "string"},
        "type": {"enum": ["application", "library"]},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "required": ["artifacthub.io/license"]},
    },
}


def yaml_files(root: Path) -> list[Path]:
    files = [root / "Chart.yaml", root / "values.yaml"]
    for d in ("values", "ci", "tests/values"):
        files += sorted((root / d).glob("*.yaml"))
    return [f for f in files if f.is_file()]


def yamllint_problems(root: Path = ROOT) -> list[str]:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig(file=str(LINTCONF))
    out = []
    for f in yaml_files(root):
        for p in linter.run(f.read_text(), conf, str(f)):
            if p.level == "error":
                out.append(f"{f.relative_to(root)}:{p.line}:{p.column}: {p.message} ({p.rule})")
    return out


def chart_problems(chart: dict) -> list[str]:
    v = jsonschema.Draft202012Validator(CHART_SCHEMA)
    return [
        f"Chart.yaml {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in sorted(v.iter_errors(chart), key=lambda e: list(map(str, e.path)))
    ]


def helmignored(path: str, patterns: list[str]) -> bool:
    """Whether .helmignore keeps `path` (relative, '/'-separated) out of the package: a pattern
    with a leading '/' matches from the root, one ending in '/' matches a directory (and so
    everything under it), any other matches the path or one of its parts' names."""
    parts = path.split("/")
    for pat in patterns:
        anchored, directory = pat.startswith("/"), pat.endswith("/")
        p = pat.strip("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + (0 if directory else 1))]
        if anchored and any(fnmatch.fnmatchcase(x, p) for x in prefixes):
            return True
        if not anchored and any(fnmatch.fnmatchcase(x.rsplit("/", 1)[-1], p) for x in prefixes):
            return True
    return False


def _version(v: str) -> tuple:
    core, _, pre = v.partition("-")
    return tuple(int(x) for x in core.split(".")) + ((0, pre) if pre else (1, ""),)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def version_bump_problems(base: str, root: Path = ROOT) -> list[str]:
    ignore = [ln.strip() for ln in (root / ".helmignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    changed = [
        p
        for p in git(root, "diff", "--name-only", base, "--", ".").splitlines()
        + git(root, "ls-files", "--others", "--exclude-standard").splitlines()
        if not helmignored(p, ignore)
    ]
    if not changed:
        return []
    old = yaml.safe_load(git(root, "show", f"{base}:Chart.yaml"))["version"]
    new = yaml.safe_load((root / "Chart.yaml").read_text())["version"]
    if _version(new) <= _version(old):
        return [
            f"Chart.yaml version: {new} is not above {old} of {base}, but the packaged chart changed "
            f"({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}). Fix: bump the version."
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", help="git ref to check the version bump against (a pull request's base)")
    args = ap.parse_args(argv)
    problems = yamllint_problems() + chart_problems(yaml.safe_load((ROOT / "Chart.yaml").read_text()))
    if args.base:
        problems += version_bump_problems(args.base)
    for p in problems:
        print(p)
    print(f"chart lint: {len(problems)} problem(s)" if problems else "chart lint: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
