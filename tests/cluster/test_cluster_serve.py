"""Cluster tier: the workspace and serve stages in one namespace.

1. workspace (values/ci-workspace.yaml): PVC, Notebook, download Job of a tiny public model;
   the PVC binds, the Job completes and the objects hold the rendered spec.
2. serve (values/ci-serve.yaml): the Deployment becomes available, its Service selects the
   serving pod on the port the chart names, and `helm test` runs its hook pod to completion.
3. `helm uninstall` of the workspace keeps the PVC; a second workspace release adopts it
   through storage.existingClaim.

On kwok's simulated nodes no container runs: what the programs print and answer (the
download's log, vLLM's completion, "nothing to do" on the second download) is checked by
the tests marked `kubelet`, which need kind or a T9k cluster.
"""

from __future__ import annotations

import json

import pytest

import commands
import waits
from kube import by_kind, diff, render, selector

pytestmark = pytest.mark.cluster

WORKSPACE, SERVE, AGAIN = "ci-workspace", "ci-serve", "ci-workspace-again"
PVC = "llama-factory"
# Both include pulling vLLM's CPU image (a few GB) onto a fresh node.
DOWNLOAD_TIMEOUT = 1800
SERVE_TIMEOUT = 1500


def pod_logs(kube, ns, label_selector: str, tail: int = 80) -> str:
    out = []
    for pod in kube.pods(ns, label_selector):
        name = pod["metadata"]["name"]
        try:
            text = kube.log(ns, name, tail_lines=tail)
        except Exception as e:  # noqa: BLE001 - a container that never started has no log
            text = f"(no log: {commands.one_line(str(e))})"
        out.append(f"--- last {tail} log lines of Pod/{name} ---\n{text.rstrip()}")
    return "\n".join(out)


def wait_download(kube, ns: str, release: str, timeout: float) -> dict:
    """The release's download Job, once it succeeded (fails fast when it fails)."""
    sel = selector(release, "workspace")
    (job,) = waits.wait_for(
        lambda: kube.jobs(ns, sel),
        waits.job_state,
        what=f"download Job of release {release}",
        count=1,
        timeout=timeout,
        interval=5,
        problems=lambda: [p for p in map(waits.pod_problem, kube.pods(ns, sel)) if p],
        events=lambda: waits.related_events(kube.events(ns), [j["metadata"]["name"] for j in kube.jobs(ns, sel)]),
        extra=lambda: pod_logs(kube, ns, sel),
    )
    return job


def job_log(kube, ns: str, job: dict) -> str:
    return pod_logs(kube, ns, f"batch.kubernetes.io/job-name={job['metadata']['name']}", tail=500)


@pytest.fixture(scope="module")
def workspace(tools, kube, namespace) -> dict:
    tools.run(commands.helm_install(tools, WORKSPACE, namespace, values=[commands.CI_WORKSPACE]))
    return wait_download(kube, namespace, WORKSPACE, DOWNLOAD_TIMEOUT)


def test_workspace_makes_a_kept_pvc_and_the_rendered_objects(tools, kube, namespace, workspace):
    rendered = render(tools, WORKSPACE, namespace, values=[commands.CI_WORKSPACE])
    (cm,) = by_kind(rendered, "ConfigMap")
    pvc = kube.pvc(namespace, PVC)
    assert pvc["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep"
    assert pvc["spec"]["accessModes"] == by_kind(rendered, "PersistentVolumeClaim")[0]["spec"]["accessModes"]
    assert pvc["status"]["phase"] == "Bound"

    problems = []
    for want in by_kind(rendered, "Notebook"):
        have = kube.custom(namespace, "tensorstack.dev/v1beta1", "notebooks", want["metadata"]["name"])
        problems += [f"Notebook spec{d}" for d in diff(want["spec"], (have or {}).get("spec"), exact=True)]
    live_cm = kube.configmap(namespace, cm["metadata"]["name"])
    problems += [f"ConfigMap data{d}" for d in diff(cm["data"], (live_cm or {}).get("data"), exact=True)]
    (job,) = by_kind(rendered, "Job")
    assert workspace["metadata"]["name"] == job["metadata"]["name"]
    problems += [f"Job spec.template.spec{d}" for d in diff(job["spec"]["template"]["spec"], workspace["spec"]["template"]["spec"])]
    assert not problems, "\n".join(problems)


@pytest.mark.kubelet
def test_workspace_download_fetches_the_model(tools, kube, namespace, workspace):
    rendered = render(tools, WORKSPACE, namespace, values=[commands.CI_WORKSPACE])
    (cm,) = by_kind(rendered, "ConfigMap")
    plan = json.loads(cm["data"]["download.json"])["model"]
    log = job_log(kube, namespace, workspace)
    assert f"model: downloading huggingface:{plan['repo']}@{plan['revision']} into {plan['target']}" in log, log


@pytest.fixture(scope="module")
def serving(tools, kube, namespace, workspace):
    """The serve release, installed once its Deployment is available; uninstalled afterwards."""
    tools.run(commands.helm_install(tools, SERVE, namespace, values=[commands.CI_SERVE]))
    try:
        (want,) = by_kind(render(tools, SERVE, namespace, values=[commands.CI_SERVE]), "Deployment")
        name, sel = want["metadata"]["name"], selector(SERVE, "serve")
        waits.wait_for(
            lambda: [d for d in [kube.deployment(namespace, name)] if d],
            waits.deployment_state,
            what=f"Deployment {name}",
            count=1,
            timeout=SERVE_TIMEOUT,
            interval=5,
            problems=lambda: [p for p in map(waits.pod_problem, kube.pods(namespace, sel)) if p],
            events=lambda: waits.related_events(kube.events(namespace), [name]),
            extra=lambda: pod_logs(kube, namespace, sel),
        )
        yield want
    finally:
        tools.run(commands.helm_uninstall(tools, SERVE, namespace), check=False)


def test_serve_deployment_is_available_behind_its_service(tools, kube, namespace, serving):
    have = kube.deployment(namespace, serving["metadata"]["name"])
    assert diff(serving["spec"]["template"]["spec"], have["spec"]["template"]["spec"]) == []
    (svc,) = by_kind(render(tools, SERVE, namespace, values=[commands.CI_SERVE]), "Service")
    pods = kube.pods(namespace, ",".join(f"{k}={v}" for k, v in svc["spec"]["selector"].items()))
    assert [p["metadata"]["name"] for p in pods] and all(p["status"]["phase"] == "Running" for p in pods), pods
    # The Service's port targets a port the serving container declares (the endpoints
    # controller resolves a named targetPort through the pod's container ports).
    slices = waits.wait_for(
        lambda: [s for s in kube.endpoint_slices(namespace, f"kubernetes.io/service-name={svc['metadata']['name']}") if s.get("endpoints")],
        lambda s: waits.SUCCEEDED,
        what=f"EndpointSlice of Service {svc['metadata']['name']}",
        count=1,
        timeout=60,
    )
    ports = {(p["name"], p["port"]) for s in slices for p in s["ports"] or []}
    container_ports = {
        (cp.get("name"), cp["containerPort"]) for c in have["spec"]["template"]["spec"]["containers"] for cp in c.get("ports", [])
    }
    wanted = {(sp["name"], sp["targetPort"]) for sp in svc["spec"]["ports"]}
    assert {name for name, _ in ports} == {name for name, _ in wanted}, (ports, wanted)
    assert {port for _, port in ports} <= {port for _, port in container_ports}, (ports, container_ports)
    addresses = {a for s in slices for e in s["endpoints"] for a in e["addresses"]}
    assert addresses == {p["status"]["podIP"] for p in pods}, (addresses, pods)


def test_helm_test_hook_runs_to_completion(tools, namespace, serving):
    proc = tools.run(commands.helm_test(tools, SERVE, namespace, logs=False))
    assert "Phase:          Succeeded" in proc.stdout or "Phase: Succeeded" in " ".join(proc.stdout.split()), proc.stdout


@pytest.mark.kubelet
def test_serve_answers_with_the_downloaded_model(tools, namespace, serving):
    proc = tools.run(commands.helm_test(tools, SERVE, namespace))
    assert '"choices"' in proc.stdout, proc.stdout


@pytest.fixture(scope="module")
def adopted(tools, kube, namespace, workspace):
    """The workspace release uninstalled, then a second one on the kept PVC (existingClaim)."""
    before = kube.pvc(namespace, PVC)
    tools.run(commands.helm_uninstall(tools, WORKSPACE, namespace))
    args = {"values": [commands.CI_WORKSPACE], "sets": [f"storage.existingClaim={PVC}", "notebook.enabled=false"]}
    assert not by_kind(render(tools, AGAIN, namespace, **args), "PersistentVolumeClaim")
    tools.run(commands.helm_install(tools, AGAIN, namespace, **args))
    job = wait_download(kube, namespace, AGAIN, timeout=600)
    yield before, job
    tools.run(commands.helm_uninstall(tools, AGAIN, namespace), check=False)


def test_uninstall_keeps_the_pvc_and_a_second_release_adopts_it(kube, namespace, adopted):
    before, job = adopted
    after = kube.pvc(namespace, PVC)
    assert after is not None, "helm uninstall deleted the PVC"
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert not after["metadata"].get("deletionTimestamp"), after["metadata"]
    assert kube.jobs(namespace, selector(WORKSPACE)) == []
    assert kube.pods(namespace, selector(WORKSPACE)) == [], "uninstall left pods of the release behind"
    claims = [v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [PVC], claims


@pytest.mark.kubelet
def test_a_second_download_onto_the_kept_pvc_does_nothing(kube, namespace, adopted):
    _, job = adopted
    log = job_log(kube, namespace, job)
    assert "nothing to do" in log and "model: downloading" not in log, log
