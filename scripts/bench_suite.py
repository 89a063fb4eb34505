#!/usr/bin/env python3
"""Measure the offline test suite against the bare helm time it needs.

Runs the README's test command's pytest with every helm call logged
(HARNESS_HELM_LOG), then replays exactly those helm commands, with the same
number of parallel workers the suite uses (one per core) and one at a time,
and prints the times and their ratios.

    .venv/bin/python scripts/bench_suite.py                       # the whole suite
    .venv/bin/python scripts/bench_suite.py tests/test_render.py …  # some tiers
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def replay(commands: list[list[str]], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda c: subprocess.run(c, capture_output=True, cwd=ROOT), commands))
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        env = {**os.environ, "HARNESS_HELM_LOG": log.name}
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv], cwd=ROOT, env=env, capture_output=True, text=True
        )
        suite = time.perf_counter() - start
        commands = [json.loads(line) for line in log]
    print(proc.stdout.strip().splitlines()[-1])
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:])
        return 1
    unique = list({json.dumps(c): c for c in commands}.values())
    cores = os.cpu_count() or 2
    parallel = replay(unique, cores)
    serial = replay(unique, 1)
    print(f"suite (pytest, wall):                {suite:6.1f} s")
    print(f"helm calls made by the suite:        {len(commands)} ({len(unique)} distinct)")
    print(f"bare helm, {cores} at a time:              {parallel:6.1f} s   suite / bare = {suite / parallel:.2f}")
    print(f"bare helm, one at a time:            {serial:6.1f} s   suite / bare = {suite / serial:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
