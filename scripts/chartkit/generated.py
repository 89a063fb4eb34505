"""The --write / --check entry point shared by the scripts that generate
committed files (values_doc.py, gen_crds.py): a test runs --check, so a
generated file never goes stale."""

from __future__ import annotations

import argparse
from pathlib import Path


def sync(argv: list[str], doc: str, script: str, files: dict[Path, str]) -> int:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help="write the generated files")
    g.add_argument("--check", action="store_true", help="exit 1 when a committed file differs")
    args = ap.parse_args(argv)
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
    names = ", ".join(p.name for p in stale)
    if args.write:
        for p in stale:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(files[p])
        print(f"wrote {names or 'nothing (all current)'}")
        return 0
    if stale:
        print(f"stale: {names}; run: python {script} --write")
        return 1
    print(f"current: {', '.join(p.name for p in files)}")
    return 0
