#!/usr/bin/env python3
"""Build the cluster tier's control plane from pinned Go modules into .tools/k8s-<version>/.

    kube-apiserver, kube-controller-manager, kube-scheduler   scripts/k8s/kubernetes-<minor>/go.mod
    etcd                                                      scripts/k8s/etcd/go.mod
    kwok                                                      scripts/k8s/kwok/go.mod

Each folder is a small module of this project that requires the component at a pinned
version (k8s.io/kubernetes with a `replace` of every staging module k8s.io/<name> by its
published v0.<minor>.<patch>) and lists the commands as `tool` lines. Nothing of another
project is committed: the go command fetches the pinned modules from the Go module proxy,
checked against the committed go.sum.

A build is skipped when .tools/k8s-<version>/.stamp matches the pins (go.mod and go.sum of the
modules, the Go version, this file); Go's build cache makes a rebuild after a pin change cheap
for the parts that did not change.

    python scripts/k8s/build.py                # the default version (DEFAULT below)
    python scripts/k8s/build.py 1.37 1.34      # several (or `all`)
    python scripts/k8s/build.py --print-dir 1.34
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOOLS = ROOT / ".tools"
GO_MIN = (1, 26)

# The one place that lists the Kubernetes minors the cluster tier runs against; the patch
# versions are read from the modules' go.mod. `make test` runs DEFAULT, CI runs all.
MINORS = ("1.34", "1.37")
DEFAULT = "1.34"

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


class BuildError(RuntimeError):
    """One message naming what is missing and how to get it."""


def module_dir(minor: str) -> Path:
    return HERE / f"kubernetes-{minor}"


def required_version(gomod: Path, module: str) -> str:
    """The version `gomod` requires of `module` (a direct requirement)."""
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod.read_text(), re.M)
    if not m:
        raise BuildError(f"{gomod.relative_to(ROOT)} does not require {module}")
    return m.group(1)


def kube_version(minor: str) -> str:
    """v1.34.4 for "1.34": the pinned k8s.io/kubernetes of that minor's module."""
    if minor not in MINORS:
        raise BuildError(f"Kubernetes {minor} is not pinned here; pinned: {', '.join(MINORS)}")
    return required_version(module_dir(minor) / "go.mod", "k8s.io/kubernetes")


def bin_dir(minor: str) -> Path:
    return TOOLS / f"k8s-{kube_version(minor).removeprefix('v')}"


def components(minor: str) -> list[tuple[str, Path, str, list[str]]]:
    """(binary, module folder, package, extra ldflags) of every binary of one control plane."""
    v = kube_version(minor)
    major, minor_n = v.removeprefix("v").split(".")[:2]
    # What `make` stamps into Kubernetes' binaries (hack/lib/version.sh); without it they report
    # v0.0.0-master and Helm's .Capabilities.KubeVersion would be wrong.
    stamp = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamp += [
            f"-X {pkg}.gitVersion={v}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor_n}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    kube = [(name, module_dir(minor), f"k8s.io/kubernetes/cmd/{name}", stamp) for name in KUBE_COMMANDS]
    kwok_v = required_version(HERE / "kwok" / "go.mod", "sigs.k8s.io/kwok")
    kwok_stamp = [f"-X sigs.k8s.io/kwok/pkg/consts.Version={kwok_v.removeprefix('v')}"]
    return kube + [
        ("etcd", HERE / "etcd", "go.etcd.io/etcd/server/v3", []),
        ("kwok", HERE / "kwok", "sigs.k8s.io/kwok/cmd/kwok", kwok_stamp),
    ]


def go_binary() -> str:
    go = shutil.which("go")
    if not go:
        raise BuildError(
            "the cluster tier builds Kubernetes from Go modules and needs Go "
            f">= {'.'.join(map(str, GO_MIN))} on PATH; none found. Install Go "
            "(https://go.dev/doc/install) and make sure `go version` works."
        )
    out = subprocess.run([go, "version"], capture_output=True, text=True).stdout
    m = re.search(r"go(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < GO_MIN:
        raise BuildError(
            f"`go version` says {out.strip()!r}; the pinned modules need Go >= {'.'.join(map(str, GO_MIN))}: install a newer Go"
        )
    return go


def stamp_of(minor: str, go_version: str) -> str:
    h = hashlib.sha256(go_version.encode())
    h.update(Path(__file__).read_bytes())
    for _, folder, pkg, flags in components(minor):
        for name in ("go.mod", "go.sum"):
            h.update((folder / name).read_bytes())
        h.update(pkg.encode() + " ".join(flags).encode())
    return h.hexdigest()


def explain_failure(output: str, what: str) -> str:
    tail = "\n".join(output.strip().splitlines()[-25:])
    if re.search(
        r"proxy\.golang\.org|dial tcp|i/o timeout|403 Forbidden|404 Not Found|"
        r"verifying .*: checksum mismatch|reading .*\.(zip|mod)",
        output,
    ):
        hint = (
            f"a module download failed while building {what}: the go command fetches the pinned "
            f"modules from the Go module proxy (GOPROXY={os.environ.get('GOPROXY') or 'default'}); "
            "check that it is reachable, or that the pinned version is still served"
        )
    else:
        hint = f"`go build` of {what} failed"
    return f"{hint}. Last lines of its output:\n{tail}"


def build(minor: str, *, force: bool = False, log=print) -> Path:
    """Build one control plane (skipped when its stamp matches); returns its folder."""
    go = go_binary()
    go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
    out = bin_dir(minor)
    stamp = stamp_of(minor, go_version)
    stamp_file = out / ".stamp"
    parts = components(minor)
    if not force and stamp_file.is_file() and stamp_file.read_text() == stamp and all((out / name).is_file() for name, *_ in parts):
        log(f"k8s {kube_version(minor)}: up to date in {out.relative_to(ROOT)}")
        return out
    out.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    for name, folder, pkg, flags in parts:
        start = time.monotonic()
        argv = [go, "build", "-trimpath", "-ldflags", " ".join(["-s", "-w", *flags]), "-o", str(out / name), pkg]
        proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise BuildError(explain_failure(proc.stdout + proc.stderr, f"{name} ({folder.relative_to(ROOT)})"))
        log(f"k8s {kube_version(minor)}: built {name} in {time.monotonic() - start:.0f}s")
    stamp_file.write_text(stamp)
    return out


def versions(folder: Path) -> dict[str, str]:
    """What each built binary says of its own version."""
    asks = {
        "kube-apiserver": ["--version"],
        "kube-controller-manager": ["--version"],
        "kube-scheduler": ["--version"],
        "etcd": ["--version"],
        "kwok": ["--version"],
    }
    out = {}
    for name, args in asks.items():
        proc = subprocess.run([str(folder / name), *args], capture_output=True, text=True)
        text = (proc.stdout + proc.stderr).strip().splitlines()
        out[name] = text[0] if text else f"(exit {proc.returncode}, no output)"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("minors", nargs="*", help=f"Kubernetes minors ({', '.join(MINORS)}, or all); default {DEFAULT}")
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    parser.add_argument("--print-dir", action="store_true", help="only print the binaries' folder")
    args = parser.parse_args(argv)
    minors = list(MINORS) if args.minors == ["all"] else (args.minors or [DEFAULT])
    try:
        if args.print_dir:
            for minor in minors:
                print(bin_dir(minor))
            return 0
        for minor in minors:
            folder = build(minor, force=args.force)
            for name, text in versions(folder).items():
                print(f"  {name:<24} {text}")
    except BuildError as e:
        print(f"scripts/k8s/build.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
