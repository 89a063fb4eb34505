"""How the cluster tier skips, without a cluster: the kubeconfig it reads, the one-line reason
when no API server answers (or the local control plane cannot start), and CLUSTER_REQUIRED
turning the skip into a failure.

Not marked `cluster`: runs everywhere (it runs the cluster tier in a subprocess)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import commands
from chartkit.chart import ROOT

# --- kubeconfig and skipping ---------------------------------------------------------------


def test_kubeconfig_paths():
    assert commands.kubeconfig_paths(None, {}) == []
    assert commands.kubeconfig_paths(None, {"KUBECONFIG": ""}) == []
    assert commands.kubeconfig_paths(None, {"KUBECONFIG": f"/a{os.pathsep}{os.pathsep}/b"}) == ["/a", "/b"]
    assert commands.kubeconfig_paths("/opt", {"KUBECONFIG": "/a"}) == ["/opt"]


def test_unavailable_reason(tmp_path):
    def unreachable(paths):
        raise ConnectionRefusedError("[Errno 111] Connection refused\nwhile connecting")

    cfg = tmp_path / "config"
    cfg.write_text("{}")
    assert commands.unavailable_reason([], unreachable).startswith("cluster tier: KUBECONFIG is not set")
    assert "names no existing file" in commands.unavailable_reason([str(tmp_path / "nope")], unreachable)
    reason = commands.unavailable_reason([str(cfg)], unreachable)
    assert reason.startswith(
        f"cluster tier: the API server of KUBECONFIG={cfg} does not answer "
        "(ConnectionRefusedError: [Errno 111] Connection refused while connecting)"
    )
    assert "\n" not in reason
    assert commands.unavailable_reason([str(cfg)], lambda paths: "v1.34.0") is None
    assert commands.required({"CLUSTER_REQUIRED": "1"}) and not commands.required({})


def test_one_line():
    assert commands.one_line("a\n  b\tc") == "a b c"
    assert commands.one_line("x" * 300, 10) == "x" * 9 + "…"


def run_cluster_tier(env_update: dict, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "CLUSTER_REQUIRED", "PYTEST_ADDOPTS")}
    env.update(env_update)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cluster", "-p", "no:cacheprovider", "-q", "-rs", "tests/cluster", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def unreachable_kubeconfig(tmp_path: Path) -> str:
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.parametrize("setting", ["local-cannot-start", "unreachable"])
def test_cluster_tests_skip_with_one_line_without_a_cluster(tmp_path, setting):
    # No KUBECONFIG starts the local control plane; a minor that is not pinned cannot start.
    env = {"K8S_MINOR": "0.0"} if setting == "local-cannot-start" else {"KUBECONFIG": unreachable_kubeconfig(tmp_path)}
    proc = run_cluster_tier(env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^\d+ skipped, \d+ deselected in ", out.splitlines()[-1]), out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert skips and all("cluster tier: " in line for line in skips), out
    want = (
        "the local control plane did not start: Kubernetes 0.0 is not pinned here" if setting == "local-cannot-start" else "does not answer"
    )
    assert all(want in line for line in skips), out


def test_cluster_required_turns_the_skip_into_a_failure():
    proc = run_cluster_tier({"CLUSTER_REQUIRED": "1", "K8S_MINOR": "0.0"}, "-k", "rollback")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "local control plane did not start" in proc.stdout and "1 error" in proc.stdout, proc.stdout
