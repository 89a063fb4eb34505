"""Run the pinned Helm binaries (scripts/install_helm.py puts them in .tools/).

Every helm process of the harness goes through run(), so that a session can
log them (HARNESS_HELM_LOG=<file>) and scripts/bench_suite.py can compare the
suite's time with the bare time of the helm calls it needs. Renders are cached
per process, and on disk across runs (out/render-cache/, HARNESS_RENDER_CACHE=0
turns it off) under a key of everything the output depends on: the Helm binary,
the content of every file Helm loads from the chart (what `helm package` puts
in the archive, .helmignore applied by Helm itself), the arguments and the
content of each values file. A changed template, values file or Helm misses."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import chart
from .chart import ROOT

MAJORS = ("3", "4")
_LOADER = chart.YAML_LOADER


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


CACHE = ROOT / "out" / "render-cache"


def _stats(chart: Path, names) -> tuple:
    """Size and mtime of each archived file. Not of folders: a run creates out/ at the root and
    __pycache__/ under files/ (tests import files/launch.py); a file added during a run (rare)
    is not seen."""
    out = []
    for n in sorted(names):
        try:
            st = (chart / n).stat()
            out.append((n, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((n, None, None))
    return tuple(out)


@functools.cache
def _archive(chart: Path = ROOT) -> tuple[str, tuple, tuple] | None:
    """sha256 over the names and contents of the files in the chart's archive, their names,
    and their stats when it was taken; None when the chart does not package."""
    with tempfile.TemporaryDirectory() as d:
        if run([helm_path("3"), "package", str(chart), "--destination", d]).returncode:
            return None
        h, names = hashlib.sha256(), []
        with tarfile.open(next(Path(d).glob("*.tgz"))) as archive:
            for m in sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name):
                h.update(m.name.encode() + b"\0" + archive.extractfile(m).read() + b"\0")
                names.append(m.name.split("/", 1)[1])
        return h.hexdigest(), tuple(names), _stats(chart, names)


def chart_digest(chart: Path = ROOT) -> str | None:
    """The digest of the chart's files as its archive holds them; None when the chart does not
    package, or when a file changed since this process took the digest (an edit during a test
    run): then the disk cache is neither read nor written, so a render of new templates is
    never stored under the old templates' key."""
    a = _archive(chart)
    if a is None or _stats(chart, a[1]) != a[2]:
        return None
    return a[0]


@functools.cache
def _binary(path: str) -> list:
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


def cache_key(release: Release) -> str | None:
    if os.environ.get("HARNESS_RENDER_CACHE", "1") == "0" or (chart := chart_digest()) is None:
        return None
    files = []
    for v in release.values:
        try:
            files.append(hashlib.sha256((ROOT / v).read_bytes()).hexdigest())
        except OSError:
            return None
    args = release.args()
    return hashlib.sha256(json.dumps([_binary(args[0]), chart, args[1:], files]).encode()).hexdigest()


@functools.cache
def template(release: Release) -> subprocess.CompletedProcess:
    key = cache_key(release)
    path = CACHE / key[:2] / f"{key}.json" if key else None
    if path is not None and path.exists():
        try:
            d = json.loads(path.read_text())
            return subprocess.CompletedProcess(d["args"], d["returncode"], d["stdout"], d["stderr"])
        except (OSError, ValueError, KeyError):
            pass
    proc = run(release.args())
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{id(proc)}.tmp")
        tmp.write_text(
            json.dumps({"args": [str(a) for a in proc.args], "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr})
        )
        os.replace(tmp, path)
    return proc


def run_template(release: Release) -> str:
    proc = template(release)
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


@functools.cache
def render(release: Release) -> tuple[dict, ...]:
    """The objects of a release."""
    return tuple(d for d in yaml.load_all(run_template(release), Loader=_LOADER) if d)


def render_error(release: Release) -> str:
    """Helm's error text for a release that must not render."""
    try:
        run_template(release)
    except RenderError as e:
        return e.stderr
    raise AssertionError(f"expected {release} to fail, but it rendered")


@functools.cache
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
