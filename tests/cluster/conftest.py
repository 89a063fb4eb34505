"""Fixtures of the cluster tier (tests marked `cluster`).

Which cluster: pytest-helm-charts' --kubeconfig option or $KUBECONFIG when one is named (kind
in GitHub Actions, a real T9k cluster); otherwise a local control plane that this conftest
starts once per session (scripts/k8s/cluster.py: etcd, kube-apiserver, controller-manager,
scheduler and kwok's simulated GPU nodes, built by scripts/k8s/build.py; K8S_MINOR picks the
Kubernetes minor) and stops at the end of the session, also on failure and Ctrl-C.
pytest-helm-charts reads the cluster through the `kube_config` fixture below. The first
`cluster` test asks the API server once whether it answers; when it does not, every `cluster`
test skips with one line, and CLUSTER_REQUIRED=1 (.ci/run, scripts/kind_e2e.sh) turns that skip
into a failure, so a cluster run can never pass by skipping. Tests marked `kubelet` also need
containers that really run (kind, T9k): on kwok's nodes they skip, saying so. The offline tests
of this folder (test_*_offline.py) are not marked and run everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import commands
import waits
from kube import Kube

sys.path.insert(0, str(commands.ROOT / "scripts" / "k8s"))
import cluster as local_cluster  # noqa: E402  (scripts/k8s/cluster.py)

_REASON: dict[str, str | None] = {}
_LOCAL: dict[str, local_cluster.ControlPlane | None] = {}


def _kubeconfig_option(config: pytest.Config) -> str | None:
    try:
        return config.getoption("kubeconfig")  # pytest-helm-charts' --kubeconfig
    except ValueError:
        return None


def cluster_paths(config: pytest.Config) -> list[str]:
    """The kubeconfig files of the cluster: the one named, else the local control plane's
    (started on first use). Empty when the local one cannot start (cluster_reason says why)."""
    named = commands.kubeconfig_paths(_kubeconfig_option(config), os.environ)
    if named:
        return named
    if "local" not in _LOCAL:
        _LOCAL["local"] = None
        try:
            minor = os.environ.get("K8S_MINOR") or local_cluster.build.DEFAULT
            # The pinned kubectl of the same minor (scripts/install_helm.py), when there is one.
            same = sorted(commands.ROOT.glob(f".tools/kubectl-v{minor}.*/kubectl"))
            if same and not os.environ.get("CLUSTER_KUBECTL"):
                os.environ["CLUSTER_KUBECTL"] = str(same[-1])
            plane = local_cluster.ControlPlane(minor, log=print, kubectl=os.environ.get("CLUSTER_KUBECTL"))
            plane.start()
            config.add_cleanup(plane.stop)
            _LOCAL["local"] = plane
        except (local_cluster.StartError, local_cluster.build.BuildError) as e:
            _REASON["reason"] = commands.one_line(f"cluster tier: the local control plane did not start: {e}", 240)
            _REASON["detail"] = str(e)
    plane = _LOCAL["local"]
    return [str(plane.kubeconfig)] if plane else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After a failing run on the local control plane, the tail of every component's log
    (before the plane is stopped and its folder removed)."""
    plane = _LOCAL.get("local")
    if plane is not None and session.testsfailed:
        print(f"\nlocal control plane ({plane.version}) logs after {session.testsfailed} failure(s):\n{plane.logs(40)}")


def cluster_reason(config: pytest.Config) -> str | None:
    """Why the cluster tier cannot run here, asked of the API server once per session."""
    if "reason" not in _REASON:
        paths = cluster_paths(config)
        if "reason" not in _REASON:
            _REASON["reason"] = commands.unavailable_reason(paths, Kube.probe)
    return _REASON["reason"]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cluster") is None:
        return
    reason = cluster_reason(item.config)
    if reason:
        if commands.required(os.environ):
            detail = _REASON.get("detail")
            pytest.fail(f"{reason} [CLUSTER_REQUIRED=1]" + (f"\n{detail}" if detail else ""), pytrace=False)
        pytest.skip(reason)
    if item.get_closest_marker("kwok") is not None:
        why = kwok_reason(item.config)
        if why:
            pytest.skip(why)
    if item.get_closest_marker("kubelet") is not None:
        why = kubelet_reason(item.config)
        if why:
            if os.environ.get("KUBELET_REQUIRED", "") in ("1", "true", "yes"):
                pytest.fail(f"{why} [KUBELET_REQUIRED=1]", pytrace=False)
            pytest.skip(why)


def kwok_reason(config: pytest.Config) -> str | None:
    """Why tests that need the local control plane's simulated nodes cannot run, or None."""
    if "kwok" not in _REASON:
        want = {n["metadata"]["name"] for n in local_cluster.node_objects(yaml.safe_load(local_cluster.NODES_FILE.read_text()))}
        have = {n["metadata"]["name"] for n in Kube(cluster_paths(config)).nodes()}
        _REASON["kwok"] = (
            None
            if want <= have
            else (
                "needs the simulated GPU nodes of scripts/k8s/nodes.yaml, whose pods exit 0 at once "
                "(the local control plane); this cluster lacks " + ", ".join(sorted(want - have))
            )
        )
    return _REASON["kwok"]


def kubelet_reason(config: pytest.Config) -> str | None:
    """Why tests that need containers to run cannot (every Ready node is kwok's), or None."""
    if "kubelet" not in _REASON:
        kube = Kube(cluster_paths(config))
        key, fake = local_cluster.FAKE_NODE
        real = [n["metadata"]["name"] for n in kube.nodes() if (n["metadata"].get("annotations") or {}).get(key) != fake]
        _REASON["kubelet"] = (
            None
            if real
            else ("needs containers that really run (kind: scripts/kind_e2e.sh, or a T9k cluster); every node here is simulated by kwok")
        )
    return _REASON["kubelet"]


@pytest.fixture(scope="session")
def kubeconfig_paths(pytestconfig: pytest.Config) -> list[str]:
    return cluster_paths(pytestconfig)


@pytest.fixture(scope="session")
def kube_config(kubeconfig_paths: list[str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Overrides pytest-helm-charts' fixture: one kubeconfig file for its pykube client (and
    for helm and kubectl), flattened from $KUBECONFIG when that lists several files."""
    existing = [p for p in kubeconfig_paths if Path(p).expanduser().is_file()]
    if len(existing) == 1:
        return str(Path(existing[0]).expanduser())
    kubectl = commands.kubectl_path(os.environ)
    out = subprocess.run(
        commands.kubectl_flatten(kubectl),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KUBECONFIG": os.pathsep.join(existing)},
    ).stdout
    path = tmp_path_factory.mktemp("kubeconfig") / "config"
    path.write_text(out)
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="session")
def tools(kube_config: str) -> commands.Tools:
    """Pinned helm (CLUSTER_HELM_MAJOR) and kubectl, pointed at the cluster."""
    from chartkit.helm import helm_path

    major = commands.helm_major(os.environ)
    return commands.Tools(helm=str(helm_path(major)), kubectl=commands.kubectl_path(os.environ), kubeconfig=kube_config, helm_major=major)


@pytest.fixture(scope="session")
def tools_of(kube_config: str):
    """major -> Tools with that pinned Helm (for tests that run both majors in one session)."""
    from chartkit.helm import helm_path

    return lambda major: commands.Tools(
        helm=str(helm_path(major)), kubectl=commands.kubectl_path(os.environ), kubeconfig=kube_config, helm_major=major
    )


@pytest.fixture(scope="session")
def kube(kube_config: str) -> Kube:
    return Kube([kube_config])


@pytest.fixture(scope="session")
def crds(tools: commands.Tools, kube: Kube) -> list[str]:
    """The T9k CRDs (tests/crds/, generated by scripts/gen_crds.py), server-side applied and
    established. A CRD someone else installed (a real T9k cluster) is used as it is."""
    missing = [str(p.relative_to(commands.ROOT)) for p in commands.CRD_FILES if not p.is_file()]
    if missing:
        pytest.fail(f"cluster tier: {', '.join(missing)} missing; generate them (scripts/gen_crds.py)", pytrace=False)
    docs = {yaml.safe_load(p.read_text())["metadata"]["name"]: p for p in commands.CRD_FILES}
    apply, keep = commands.crd_plan([yaml.safe_load(p.read_text()) for p in docs.values()], {name: kube.crd(name) for name in docs})
    for reason in keep.values():
        print(f"cluster tier: {reason}")
    if apply:
        tools.run(commands.kubectl_apply_server_side(tools, [docs[n] for n in apply]))
    names = list(docs)
    waits.wait_for(
        lambda: [c for c in (kube.crd(n) for n in names) if c],
        waits.crd_state,
        what="T9k CustomResourceDefinitions",
        count=len(names),
        timeout=120,
    )
    return names


@pytest.fixture(scope="module")
def namespace(namespace_factory, crds, request: pytest.FixtureRequest) -> str:
    """A fresh namespace for the module (pytest-helm-charts deletes it afterwards)."""
    prefix = "llf-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_cluster_").replace("_", "-")
    return namespace_factory(commands.unique_name(prefix[:40])).name


def job_events(kube: Kube, ns: str, names_of):
    """Callable for waits.wait_for: the namespace's events about the named objects."""
    return lambda: waits.related_events(kube.events(ns), names_of())
