"""Run the pinned Helm binaries (scripts/install_helm.py puts them in .tools/)."""
from __future__ import annotations

import functools
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


@dataclass(frozen=True)
class Release:
    """What one `helm template` call is given."""

    values: tuple[str, ...] = ()  # values files, relative to the repo root or absolute
    sets: tuple[str, ...] = ()  # --set arguments
    name: str = "llama31"
    namespace: str = "default"
    major: str = "3"

    def args(self) -> list[str]:
        args = [str(helm_path(self.major)), "template", self.name, str(ROOT), "--namespace", self.namespace]
        for v in self.values:
            args += ["-f", str(ROOT / v)]
        for s in self.sets:
            args += ["--set", s]
        return args


def run_template(release: Release) -> str:
    proc = subprocess.run(release.args(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


@functools.lru_cache(maxsize=None)
def render(release: Release) -> tuple[dict, ...]:
    """The objects of a release (cached: each combination costs one helm process)."""
    return tuple(d for d in yaml.safe_load_all(run_template(release)) if d)


def render_error(release: Release) -> str:
    """Helm's error text for a release that must not render."""
    try:
        run_template(release)
    except RenderError as e:
        return e.stderr
    raise AssertionError(f"expected {release} to fail, but it rendered")


def lint(values: tuple[str, ...], major: str) -> subprocess.CompletedProcess:
    args = [str(helm_path(major)), "lint", "--strict", str(ROOT)]
    for v in values:
        args += ["-f", str(ROOT / v)]
    return subprocess.run(args, capture_output=True, text=True)
