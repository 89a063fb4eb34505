"""The cluster tier's Kubernetes client (kube.py), without a cluster: the comparison of live
objects with the render, and the reads against a stub API server of recorded objects.

Not marked `cluster`: runs everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import commands
import waits
from kube import diff
from recorded import DEP_MIN_AVAILABLE_NO_POD, JOB_131_SUCCEEDED, T1, cond, event, pod

# --- comparison of live objects with the render -------------------------------------------


def test_diff_subset_and_exact():
    rendered = {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": 2}}}]}
    live = {
        "containers": [
            {"name": "c", "terminationMessagePath": "/dev/termination-log", "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": "2"}}}
        ],
        "dnsPolicy": "ClusterFirst",
    }
    assert diff(rendered, live) == []
    assert diff(rendered, live, exact=True) == [
        ".containers[0].terminationMessagePath: unexpected '/dev/termination-log'",
        ".dnsPolicy: unexpected 'ClusterFirst'",
    ]
    pruned = {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2"}}}]}
    assert diff(rendered, pruned) == [".containers[0].resources.limits.nvidia.com/gpu: missing (expected 2)"]
    assert diff({"a": [1, 2]}, {"a": [1]}) == [".a: expected 2 items, found 1: [1]"]
    assert diff({"a": True}, {"a": "True"}) == [".a: expected True, found 'True'"]
    assert diff({"a": 1.0}, {"a": 1}) == []


# --- the kubernetes-client reads, against a stub API server -----------------------------------


class StubAPI:
    """A local HTTP server answering a few API paths with recorded JSON (404 otherwise)."""

    def __init__(self, routes: dict[str, dict]):
        import http.server
        import threading

        self.routes, self.seen = routes, []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                path, _, query = self.path.partition("?")
                stub.seen.append((path, query))
                body = stub.routes.get(path)
                status = 200 if body is not None else 404
                if body is None:
                    body = {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                        "message": f"{path} not found",
                    }
                text = isinstance(body, str)
                data = body.encode() if text else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kubeconfig(self, tmp_path: Path) -> str:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "stub",
            "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{self.server.server_port}"}}],
            "users": [{"name": "stub", "user": {"token": "t"}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
        }
        path = tmp_path / "stub-kubeconfig"
        path.write_text(yaml.safe_dump(cfg))
        return str(path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0",
    "gitCommit": "x",
    "gitTreeState": "clean",
    "buildDate": "2025-08-27T00:00:00Z",
    "goVersion": "go1.24.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_pod(p: dict) -> dict:
    """A recorded pod with the fields the API server always sets (the client requires them)."""
    p = json.loads(json.dumps(p))
    p["spec"] = {"containers": [{"name": "vllm", "image": "vllm"}]}
    for cs in p["status"]["containerStatuses"]:
        cs.update(image="vllm", imageID="")
    return p


@pytest.fixture
def stub(tmp_path):
    crd = yaml.safe_load(commands.CRD_FILES[0].read_text())
    crd["status"] = {"conditions": [cond("NamesAccepted"), cond("Established")]}
    dj = {
        "apiVersion": "batch.tensorstack.dev/v1beta1",
        "kind": "DeepSpeedJob",
        "metadata": {"name": "r-sft-0123abcd", "namespace": "ns"},
        "spec": {"config": {"slotsPerWorker": 2}},
    }
    api = StubAPI(
        {
            "/version": VERSION,
            "/version/": VERSION,
            "/apis/batch/v1/namespaces/ns/jobs": {
                "apiVersion": "batch/v1",
                "kind": "JobList",
                "metadata": {},
                "items": [{k: v for k, v in JOB_131_SUCCEEDED.items() if k != "kind"}],
            },
            "/apis/apps/v1/namespaces/ns/deployments/srv": {
                **DEP_MIN_AVAILABLE_NO_POD,
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "vllm", "image": "vllm", "args": ["--port=8000"]}]},
                    },
                },
            },
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}": crd,
            "/apis/batch.tensorstack.dev/v1beta1/namespaces/ns/deepspeedjobs": {
                "apiVersion": "batch.tensorstack.dev/v1beta1",
                "kind": "DeepSpeedJobList",
                "metadata": {},
                "items": [dj],
            },
            "/apis/batch.tensorstack.dev/v1beta1/namespaces/ns/deepspeedjobs/r-sft-0123abcd": dj,
            "/api/v1/namespaces/ns/events": {
                "apiVersion": "v1",
                "kind": "EventList",
                "metadata": {},
                "items": [
                    {
                        **event("srv-5d8-x1", "BackOff", "Back-off restarting failed container", T1),
                        "metadata": {"name": "srv-5d8-x1.1", "namespace": "ns"},
                    }
                ],
            },
            "/api/v1/namespaces/ns/pods": {
                "apiVersion": "v1",
                "kind": "PodList",
                "metadata": {},
                "items": [api_pod(pod(waiting={"reason": "CrashLoopBackOff"}, last={"exitCode": 1, "reason": "Error"}))],
            },
            "/api/v1/namespaces/ns/pods/srv-5d8-x1/log": "INFO starting\nValueError: boom\n",
        }
    )
    yield api, api.kubeconfig(tmp_path), crd["metadata"]["name"]
    api.close()


def test_kube_reads_return_api_shaped_dicts(stub):
    from kube import Kube, selector

    api, cfg, crd_name = stub
    assert commands.unavailable_reason([cfg], Kube.probe) is None
    kube = Kube([cfg])
    (j,) = kube.jobs("ns", selector("r", "workspace"))
    assert j["kind"] == "Job" and waits.job_state(j) == waits.SUCCEEDED
    assert [c["type"] for c in j["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    from urllib.parse import parse_qs

    asked = [parse_qs(q)["labelSelector"] for p, q in api.seen if p == "/apis/batch/v1/namespaces/ns/jobs"]
    assert asked == [["app.kubernetes.io/instance=r,app.kubernetes.io/component=workspace"]]
    dep = kube.deployment("ns", "srv")
    assert waits.deployment_state(dep) == waits.PROGRESSING
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"] == ["--port=8000"]
    assert j["status"]["conditions"][0]["lastTransitionTime"].startswith("2026-11-29T10:01:00")
    assert kube.configmap("ns", "missing") is None and kube.deployment("ns", "missing") is None
    assert waits.crd_state(kube.crd(crd_name)) == waits.ESTABLISHED
    (dj,) = kube.customs("ns", "batch.tensorstack.dev/v1beta1", "deepspeedjobs", selector("r"))
    assert dj["spec"] == {"config": {"slotsPerWorker": 2}}
    assert kube.custom("ns", "batch.tensorstack.dev/v1beta1", "deepspeedjobs", "r-sft-0123abcd") == dj
    assert kube.custom("ns", "batch.tensorstack.dev/v1beta1", "deepspeedjobs", "gone") is None
    (p,) = kube.pods("ns", selector("r", "serve"))
    assert waits.pod_problem(p) == "Pod/srv-5d8-x1 container vllm: CrashLoopBackOff ; last exit 1 (Error)"
    assert kube.log("ns", "srv-5d8-x1", tail_lines=10).endswith("ValueError: boom\n")
    (e,) = waits.related_events(kube.events("ns"), ["srv"])
    assert waits.format_events([e])[0].endswith("Pod/srv-5d8-x1: Back-off restarting failed container")
