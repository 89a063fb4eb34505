"""Record every render of the chart, and compare two records: the proof that a
reshaping is behaviour-neutral.

    python scripts/render_snapshot.py record out/renders-before
    ...change templates or scripts...
    python scripts/render_snapshot.py record out/renders-after
    python scripts/render_snapshot.py compare out/renders-before out/renders-after

A record holds, under both Helm majors, every values file of values/ rendered
alone (overlays on the 8B preset) for each stage and for the seven-stage
release, and Helm's message for every file of tests/bad_values/. `compare`
prints a unified diff of each file that differs and exits 1 when any does.
Renders bypass the harness's disk cache (they call the pinned binaries).
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chartkit import helm
from chartkit.chart import OVERLAYS, ROOT, STAGES


def cases() -> list[tuple[str, list[str]]]:
    """(record file name, helm arguments after `template llama31 .`)."""
    out = []
    selections = [[s] for s in STAGES] + [list(STAGES)]
    for values in sorted((ROOT / "values").glob("*.yaml")):
        files = ["values/8b.yaml", f"values/{values.name}"] if values.name in OVERLAYS else [f"values/{values.name}"]
        for selection in selections:
            name = f"{values.stem}.{'+'.join(selection) if len(selection) < len(STAGES) else 'all'}"
            args = [a for f in files for a in ("-f", f)] + ["--set", "stages={" + ",".join(selection) + "}"]
            out.append((name, args))
    for bad in sorted((ROOT / "tests/bad_values").glob("*.yaml")):
        presets = re.findall(r"^# preset: (.*)$", bad.read_text(), re.M)
        args = [a for p in presets for a in ("-f", f"values/{p}")] + ["-f", str(bad.relative_to(ROOT))]
        out.append((f"bad.{bad.stem}", args))
    return out


# Helm 4 names a random location for a schema's `propertyNames` failure (six runs of one bad
# values file name six paths): the record keeps the rest of the message.
RANDOM_AT = re.compile(r"^- at '[^']*': invalid propertyName", re.M)


def render(major: str, args: list[str]) -> str:
    p = subprocess.run([str(helm.helm_path(major)), "template", "llama31", ".", *args], capture_output=True, text=True, cwd=ROOT)
    stderr = RANDOM_AT.sub("- at '<random>': invalid propertyName", p.stderr)
    return p.stdout + (f"\n--- stderr (exit {p.returncode})\n{stderr}" if p.returncode else "")


def record(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(f"{name}.helm{m}", m, args) for name, args in cases() for m in helm.MAJORS]
    with ThreadPoolExecutor(4) as pool:
        for (name, _, _), text in zip(jobs, pool.map(lambda j: render(j[1], j[2]), jobs)):
            (folder / name).write_text(text)
    print(f"{len(jobs)} renders in {folder}")


def compare(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    differ = 0
    for name in names:
        left = (a / name).read_text().splitlines(keepends=True) if (a / name).exists() else []
        right = (b / name).read_text().splitlines(keepends=True) if (b / name).exists() else []
        if left != right:
            differ += 1
            sys.stdout.writelines(difflib.unified_diff(left, right, str(a / name), str(b / name), n=2))
    print(f"{len(names)} renders compared, {differ} differ")
    return 1 if differ else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("record").add_argument("folder", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    ns = ap.parse_args()
    if ns.cmd == "record":
        record(ns.folder)
        return 0
    return compare(ns.a, ns.b)


if __name__ == "__main__":
    sys.exit(main())
