"""The local control plane's build and start (scripts/k8s/), without the cluster tier: pins,
node shapes, and the one-message errors a user gets when something is missing or does not
come up. Runs everywhere (not marked `cluster`); the tests that start real components skip
when the binaries are not built (`make k8s`)."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

import pytest
import yaml

from chartkit.chart import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "k8s"))
import build  # noqa: E402

import cluster  # noqa: E402


def test_every_pinned_minor_has_a_module_with_every_staging_module_replaced():
    for minor in build.MINORS:
        gomod = (build.module_dir(minor) / "go.mod").read_text()
        version = build.kube_version(minor)
        assert version.startswith(f"v{minor}."), version
        staging = f"v0.{version.removeprefix('v1.')}"
        replaced = re.findall(r"^\s*(k8s\.io/[a-z0-9-]+) => (k8s\.io/[a-z0-9-]+) (v\S+)", gomod, re.M)
        assert len(replaced) >= 30, replaced
        assert all(a == b and v == staging for a, b, v in replaced), replaced
        # Every staging module the pinned k8s.io/kubernetes requires at v0.0.0 is replaced.
        unpublished = set(re.findall(r"^\s*(k8s\.io/\S+) v0\.0\.0(?:\s|$)", gomod, re.M))
        assert unpublished and unpublished <= {a for a, _, _ in replaced}, unpublished - {a for a, _, _ in replaced}
        assert (build.module_dir(minor) / "go.sum").is_file()
    assert build.DEFAULT in build.MINORS


def test_the_binaries_folder_is_named_by_the_pinned_version():
    assert build.bin_dir("1.34") == ROOT / ".tools" / f"k8s-{build.kube_version('1.34').removeprefix('v')}"
    with pytest.raises(build.BuildError, match="not pinned here; pinned: 1.34, 1.37"):
        build.kube_version("1.99")


def test_the_stamp_changes_with_a_pin(monkeypatch, tmp_path):
    before = build.stamp_of("1.34", "go1.26.8")
    assert build.stamp_of("1.34", "go1.26.8") == before
    assert build.stamp_of("1.34", "go1.27.0") != before
    fake = tmp_path / "etcd"
    fake.mkdir()
    (fake / "go.mod").write_text((build.HERE / "etcd" / "go.mod").read_text().replace("v3.6.8", "v3.6.9"))
    (fake / "go.sum").write_text("")
    parts = build.components("1.34")
    monkeypatch.setattr(build, "components", lambda minor: [(n, fake if n == "etcd" else f, p, x) for n, f, p, x in parts])
    assert build.stamp_of("1.34", "go1.26.8") != before


def test_a_missing_or_old_go_is_one_message(monkeypatch, tmp_path):
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(build.BuildError, match=r"needs Go >= 1\.26 on PATH; none found"):
        build.go_binary()
    old_go = tmp_path / "go"
    old_go.write_text("#!/bin/sh\necho go version go1.21.0 linux/amd64\n")
    old_go.chmod(0o755)
    monkeypatch.setattr(build.shutil, "which", lambda name: str(old_go))
    with pytest.raises(build.BuildError, match=r"go1\.21\.0.*need Go >= 1\.26: install a newer Go"):
        build.go_binary()


def test_a_failed_module_download_names_the_proxy():
    out = "go: k8s.io/api@v0.34.4: reading https://proxy.golang.org/k8s.io/api/@v/v0.34.4.zip: 403 Forbidden\n"
    msg = build.explain_failure(out, "kube-apiserver (scripts/k8s/kubernetes-1.34)")
    assert msg.startswith("a module download failed while building kube-apiserver"), msg
    assert "Go module proxy" in msg and "403 Forbidden" in msg
    assert build.explain_failure("undefined: x\n", "etcd").startswith("`go build` of etcd failed")


def test_nodes_are_the_preset_shapes():
    nodes = cluster.node_objects(yaml.safe_load(cluster.NODES_FILE.read_text()))
    by_name = {n["metadata"]["name"]: n for n in nodes}
    gpus = {name: int(n["status"]["capacity"].get("nvidia.com/gpu", 0)) for name, n in by_name.items()}
    assert gpus == {"a100-40gb-x2-0": 2, "a100-40gb-x2-1": 2, "a100-80gb-x4-0": 4, "a100-40gb-x8-0": 8, "cpu-0": 0}
    for n in nodes:
        assert n["metadata"]["annotations"] == {cluster.FAKE_NODE[0]: cluster.FAKE_NODE[1]}
        assert n["status"]["allocatable"] == n["status"]["capacity"]
    assert by_name["a100-80gb-x4-0"]["metadata"]["labels"]["nvidia.com/gpu.memory"] == "81920"
    assert "nvidia.com/gpu.product" not in by_name["cpu-0"]["metadata"]["labels"]


def test_storage_pool_binds_any_access_mode_and_is_never_reused():
    sc, *pvs = cluster.storage_objects(pool=3)
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["volumeBindingMode"] == "Immediate"
    assert len(pvs) == 3 and len({p["metadata"]["name"] for p in pvs}) == 3
    for pv in pvs:
        assert set(pv["spec"]["accessModes"]) == {"ReadWriteOnce", "ReadWriteMany"}
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pv["spec"]["storageClassName"] == sc["metadata"]["name"]


def test_kwok_stages_parse_and_cover_nodes_pods_and_jobs():
    stages = [d for d in yaml.safe_load_all(cluster.KWOK_CONFIG.read_text()) if d]
    assert {s["kind"] for s in stages} == {"Stage"}
    refs = {(s["spec"]["resourceRef"]["kind"], s["metadata"]["name"]) for s in stages}
    assert {k for k, _ in refs} == {"Node", "Pod"}
    assert {n for _, n in refs} >= {"node-ready", "pod-running", "pod-exits-0", "pod-delete"}


def test_missing_binaries_are_one_message(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "bin_dir", lambda minor: tmp_path / "nothing")
    plane = cluster.ControlPlane("1.34", workdir=str(tmp_path / "run"), kubectl="kubectl")
    with pytest.raises(cluster.StartError, match=r"not built in .*nothing: run `python scripts/k8s/build.py 1.34`"):
        plane.start()


BUILT = all((build.bin_dir(build.DEFAULT) / n).is_file() for n in ("etcd", "kube-apiserver"))


@pytest.mark.skipif(not BUILT, reason="the control plane is not built (make k8s)")
def test_a_port_in_use_ends_the_start_with_the_components_log(tmp_path, monkeypatch):
    """A real etcd that cannot bind its port: one message, its log's tail, nothing left running."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        monkeypatch.setattr(cluster, "free_port", lambda: port)
        plane = cluster.ControlPlane(build.DEFAULT, workdir=str(tmp_path / "run"), log=lambda *a: None)
        with pytest.raises(cluster.StartError) as err:
            plane.start()
        msg = str(err.value)
        assert msg.startswith("etcd exited with") and "last lines of its log" in msg, msg
        assert "address already in use" in msg, msg
        assert all(p.poll() is not None for p in plane.procs.values())
    finally:
        taken.close()


@pytest.mark.skipif(not BUILT, reason="the control plane is not built (make k8s)")
def test_stop_ends_every_started_process_by_its_pid(tmp_path):
    plane = cluster.ControlPlane(build.DEFAULT, log=lambda *a: None)
    plane.start()
    pids = [p.pid for p in plane.procs.values()]
    assert len(pids) == 5 and Path(plane.kubeconfig).is_file()
    plane.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not plane.dir.exists()
