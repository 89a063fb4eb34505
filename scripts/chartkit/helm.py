"""Run the pinned Helm binaries (scripts/install_helm.py puts them in .tools/).

Every helm process of the harness goes through run(), so that a session can
log them (HARNESS_HELM_LOG=<file>) and scripts/bench_suite.py can compare the
suite's time with the bare time of the helm calls it needs. Renders are cached
per process: each combination costs one helm run."""
from __future__ import annotations

import functools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .chart import ROOT

MAJORS = ("3", "4")


class RenderError(Exception):
    """helm template failed; .stderr holds Helm's message."""

    def __init__(self, stderr: str):
        super().__init__(stderr)
        self.stderr = stderr


@functools.cache
def helm_path(major: str) -> Path:
    """The pinned helm of a major version, installed on first use."""
    link = ROOT / ".tools" / "bin" / f"helm{major}"
    if not link.exists():
        subprocess.run(["python3", str(ROOT / "scripts" / "install_helm.py")], check=True, stdout=subprocess.DEVNULL)
    return link


def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run one helm command (args[0] is the helm binary), logging it when asked to."""
    log = os.environ.get("HARNESS_HELM_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps([str(a) for a in args]) + "\n")
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd)


@dataclass(frozen=True)
class Release:
    """What one `helm template` call is given."""

    values: tuple[str, ...] = ()  # values files, relative to the repo root or absolute
    sets: tuple[str, ...] = ()  # --set arguments
    set_json: tuple[str, ...] = ()  # --set-json arguments
    name: str = "llama31"
    namespace: str = "default"
    major: str = "3"

    def args(self) -> list[str]:
        args = [str(helm_path(self.major)), "template", self.name, str(ROOT), "--namespace", self.namespace]
        for v in self.values:
            args += ["-f", str(ROOT / v)]
        for s in self.sets:
            args += ["--set", s]
        for s in self.set_json:
            args += ["--set-json", s]
        return args


@functools.lru_cache(maxsize=None)
def template(release: Release) -> subprocess.CompletedProcess:
    return run(release.args())


def run_template(release: Release) -> str:
    proc = template(release)
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


@functools.lru_cache(maxsize=None)
def render(release: Release) -> tuple[dict, ...]:
    """The objects of a release."""
    return tuple(d for d in yaml.safe_load_all(run_template(release)) if d)


def render_error(release: Release) -> str:
    """Helm's error text for a release that must not render."""
    try:
        run_template(release)
    except RenderError as e:
        return e.stderr
    raise AssertionError(f"expected {release} to fail, but it rendered")


@functools.lru_cache(maxsize=None)
def lint(values: tuple[str, ...], sets: tuple[str, ...], major: str) -> subprocess.CompletedProcess:
    args = [str(helm_path(major)), "lint", "--strict", str(ROOT)]
    for v in values:
        args += ["-f", str(ROOT / v)]
    for s in sets:
        args += ["--set", s]
    return run(args)


def prefetch(jobs, workers: int | None = None) -> int:
    """Run many cached helm calls at once (Releases to template, or zero-argument
    callables such as a lint) so that a test run keeps every core busy; the
    tests then read the caches. Returns how many were run."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = list(dict.fromkeys(jobs))
    with ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
        list(pool.map(lambda j: template(j) if isinstance(j, Release) else j(), jobs))
    return len(jobs)
