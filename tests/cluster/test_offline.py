"""Offline half of the cluster tier: everything it decides without a cluster.

Not marked `cluster`: runs everywhere. Covers the wait predicates on recorded object states
(including a Kubernetes 1.31 Job whose SuccessCriteriaMet comes before Complete), the wait
loop on a fake clock and its failure messages, the command lines the tier runs (and that
every flag exists in the pinned Helm 3, Helm 4 and kubectl), the skip wiring, and the CI
overlays (values/ci-*.yaml) that the cluster tier installs.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import commands
import waits
from chartkit import helm, k8s
from chartkit.chart import ROOT, presets
from chartkit.pipeline import pod_templates
from kube import diff

# --- recorded object states --------------------------------------------------------------

T0, T1, T2 = "2026-11-29T10:00:00Z", "2026-11-29T10:01:00Z", "2026-11-29T10:02:00Z"


def job(name="dl", conditions=(), **status):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "status": {**status, "conditions": list(conditions)}}


def cond(type_, status="True", reason=None, message=None, t=T1):
    c = {"type": type_, "status": status, "lastTransitionTime": t}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


JOB_RUNNING = job(active=1, ready=0)
JOB_PENDING_NO_STATUS = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "dl"}}
# Kubernetes >= 1.31: SuccessCriteriaMet is added first, then Complete (conditions[0] is not Complete).
JOB_131_SUCCESS_CRITERIA_ONLY = job(conditions=[cond("SuccessCriteriaMet", reason="CompletionsReached",
                                                     message="Reached expected number of succeeded pods")],
                                    succeeded=1)
JOB_131_SUCCEEDED = job(conditions=[cond("SuccessCriteriaMet", reason="CompletionsReached", t=T1),
                                    cond("Complete", reason="CompletionsReached", t=T2)], succeeded=1)
JOB_130_SUCCEEDED = job(conditions=[cond("Complete")], succeeded=1)
JOB_BACKOFF_LIMIT = job(conditions=[
    cond("FailureTarget", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit"),
    cond("Failed", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit", t=T2)],
    failed=3)
JOB_131_FAILURE_TARGET_ONLY = job(conditions=[cond("FailureTarget", reason="BackoffLimitExceeded",
                                                   message="Job has reached the specified backoff limit")], failed=3)
JOB_DEADLINE = job(conditions=[cond("Failed", reason="DeadlineExceeded",
                                    message="Job was active longer than specified deadline")], failed=1)
JOB_SUSPENDED = job(conditions=[cond("Suspended", reason="JobSuspended")])
JOB_FAILED_FALSE = job(conditions=[cond("Failed", status="False")], active=1)


def deployment(replicas=1, generation=2, observed=2, updated=1, ready=1, available=1, total=None, conditions=()):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "srv", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "replicas": replicas if total is None else total,
                       "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available,
                       "conditions": list(conditions)}}


DEP_AVAILABLE = deployment(conditions=[cond("Available", reason="MinimumReplicasAvailable"),
                                       cond("Progressing", reason="NewReplicaSetAvailable")])
# maxUnavailable=1 with one replica: the Available condition holds with no pod ready.
DEP_MIN_AVAILABLE_NO_POD = deployment(ready=0, available=0, conditions=[
    cond("Available", reason="MinimumReplicasAvailable"), cond("Progressing", reason="ReplicaSetUpdated")])
DEP_STALE_GENERATION = deployment(observed=1, conditions=[cond("Available")])
DEP_OLD_POD_TERMINATING = deployment(total=2, conditions=[cond("Available")])
DEP_DEADLINE = deployment(ready=0, available=0, conditions=[
    cond("Progressing", status="False", reason="ProgressDeadlineExceeded",
         message='ReplicaSet "srv-5d8" has timed out progressing.')])


def pod(name="srv-5d8-x1", waiting=None, last=None, phase="Pending", **status):
    cs = {"name": "vllm", "ready": False, "restartCount": 3 if last else 0, "state": {}}
    if waiting:
        cs["state"] = {"waiting": waiting}
    if last:
        cs["lastState"] = {"terminated": last}
    return {"kind": "Pod", "metadata": {"name": name}, "status": {"phase": phase, "containerStatuses": [cs], **status}}


def event(name, reason, message, t, type_="Warning", kind="Pod", count=1):
    return {"kind": "Event", "type": type_, "reason": reason, "message": message, "lastTimestamp": t,
            "count": count, "involvedObject": {"kind": kind, "name": name}}


# --- predicates --------------------------------------------------------------------------

@pytest.mark.parametrize("obj,state", [
    (JOB_RUNNING, waits.RUNNING),
    (JOB_PENDING_NO_STATUS, waits.RUNNING),
    (JOB_SUSPENDED, waits.RUNNING),
    (JOB_FAILED_FALSE, waits.RUNNING),
    (JOB_131_SUCCESS_CRITERIA_ONLY, waits.SUCCEEDED),
    (JOB_131_SUCCEEDED, waits.SUCCEEDED),
    (JOB_130_SUCCEEDED, waits.SUCCEEDED),
    (JOB_BACKOFF_LIMIT, waits.FAILED),
    (JOB_131_FAILURE_TARGET_ONLY, waits.FAILED),
    (JOB_DEADLINE, waits.FAILED),
], ids=["running", "no-status", "suspended", "failed-false", "1.31-success-criteria-only", "1.31-succeeded",
        "1.30-succeeded", "backoff-limit", "1.31-failure-target-only", "deadline"])
def test_job_state_reads_any_condition(obj, state):
    assert waits.job_state(obj) == state


def test_pytest_helm_charts_job_wait_misses_the_131_success():
    """Why the tier has its own wait: the plugin reads conditions[0] == Complete only."""
    from pytest_helm_charts.k8s.job import _job_complete

    assert _job_complete(SimpleNamespace(obj=JOB_130_SUCCEEDED))
    assert not _job_complete(SimpleNamespace(obj=JOB_131_SUCCEEDED))
    assert waits.job_state(JOB_131_SUCCEEDED) == waits.SUCCEEDED


def test_job_failure_names_reason_and_message():
    assert waits.job_failure(JOB_BACKOFF_LIMIT) == \
        "BackoffLimitExceeded: Job has reached the specified backoff limit"
    assert waits.job_failure(JOB_DEADLINE) == "DeadlineExceeded: Job was active longer than specified deadline"
    assert waits.job_failure(JOB_131_SUCCEEDED) is None


@pytest.mark.parametrize("obj,state", [
    (DEP_AVAILABLE, waits.AVAILABLE),
    (DEP_MIN_AVAILABLE_NO_POD, waits.PROGRESSING),
    (DEP_STALE_GENERATION, waits.PROGRESSING),
    (DEP_OLD_POD_TERMINATING, waits.PROGRESSING),
    (DEP_DEADLINE, waits.FAILED),
], ids=["available", "available-condition-without-pod", "stale-generation", "old-pod-left", "deadline"])
def test_deployment_state(obj, state):
    assert waits.deployment_state(obj) == state
    assert waits.deployment_available(obj) is (state == waits.AVAILABLE)


@pytest.mark.parametrize("obj,expect", [
    (pod(waiting={"reason": "ContainerCreating"}), None),
    (pod(waiting={"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x": toomanyrequests: '
                                                          "rate limit"}), None),
    (pod(waiting={"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=vllm"},
         last={"exitCode": 1, "reason": "Error"}), "CrashLoopBackOff"),
    (pod(waiting={"reason": "ErrImagePull", "message": 'failed to pull "docker.io/vllm/x:v9": not found'}),
     "ErrImagePull"),
    (pod(waiting={"reason": "CreateContainerConfigError", "message": 'secret "hf-token" not found'}),
     "CreateContainerConfigError"),
    (pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory."), "evicted"),
    (pod(phase="Running"), None),
], ids=["creating", "pull-rate-limit", "crash-loop", "image-not-found", "missing-secret", "evicted", "running"])
def test_pod_problem(obj, expect):
    found = waits.pod_problem(obj)
    if expect is None:
        assert found is None
    else:
        assert expect in found and "\n" not in found


def test_crash_loop_problem_carries_the_last_exit():
    oom = {"exitCode": 137, "reason": "OOMKilled"}
    found = waits.pod_problem(pod(waiting={"reason": "CrashLoopBackOff"}, last=oom))
    assert found == "Pod/srv-5d8-x1 container vllm: CrashLoopBackOff ; last exit 137 (OOMKilled)"


def test_crd_state():
    crd = {"kind": "CustomResourceDefinition", "metadata": {"name": "x"}, "status": {"conditions": [
        cond("NamesAccepted"), cond("Established")]}}
    assert waits.crd_state(crd) == waits.ESTABLISHED
    crd["status"]["conditions"][1]["status"] = "False"
    assert waits.crd_state(crd) == waits.RUNNING
    crd["status"]["conditions"][0] = cond("NamesAccepted", status="False", reason="ListKindConflict")
    assert waits.crd_state(crd) == waits.FAILED


# --- events ------------------------------------------------------------------------------

def test_related_events_follow_owned_names_and_sort_by_time():
    events = [event("dl-abc12", "BackOff", "Back-off restarting", T2),
              event("dl", "SuccessfulCreate", "Created pod: dl-abc12", T0, type_="Normal", kind="Job"),
              event("dlx", "Other", "not ours", T1), event("other", "Other", "not ours", T1)]
    got = waits.related_events(events, ["dl"])
    assert [e["reason"] for e in got] == ["SuccessfulCreate", "BackOff"]


def test_format_events_keeps_the_last_and_counts():
    events = [event("p", f"R{i}", f"message {i}\nsecond line", f"2026-11-29T10:00:{i:02d}Z", count=i)
              for i in range(20)]
    lines = waits.format_events(events, limit=3)
    assert len(lines) == 3
    assert lines[-1] == "2026-11-29T10:00:19Z Warning R19 Pod/p: message 19 second line (x19)"


# --- the wait loop on a fake clock ---------------------------------------------------------

class Clock:
    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def sequence(*states):
    """A getter that returns the recorded states in turn, then the last one forever."""
    it = iter(states)
    last = []

    def get():
        nonlocal last
        last = next(it, last)
        return last
    return get


def test_wait_returns_when_the_job_succeeds():
    clock = Clock()
    got = waits.wait_for(sequence([], [JOB_RUNNING], [JOB_131_SUCCESS_CRITERIA_ONLY]), waits.job_state,
                         what="download Job", count=1, timeout=60, interval=5, clock=clock, sleep=clock.sleep)
    assert got == [JOB_131_SUCCESS_CRITERIA_ONLY]
    assert clock.sleeps == [5, 5]


def test_wait_fails_fast_with_the_failure_reason():
    clock = Clock()
    with pytest.raises(waits.WaitFailed) as e:
        waits.wait_for(sequence([JOB_RUNNING], [JOB_BACKOFF_LIMIT]), waits.job_state, what="download Job",
                       count=1, timeout=3600, interval=5, clock=clock, sleep=clock.sleep,
                       events=lambda: [event("dl-abc12", "BackOff", "Back-off restarting failed container", T1)])
    assert clock.sleeps == [5], "a failed Job must end the wait at once"
    text = str(e.value)
    assert text.startswith("download Job: failed after 5s")
    assert "Job/dl: failed (active 0, ready 0, succeeded 0, failed 3; BackoffLimitExceeded: Job has reached the " \
           "specified backoff limit" in text
    assert "Back-off restarting failed container" in text


def test_wait_fails_fast_on_a_pod_problem():
    clock = Clock()
    crash = pod(waiting={"reason": "CrashLoopBackOff"}, last={"exitCode": 1, "reason": "Error"})
    with pytest.raises(waits.WaitFailed) as e:
        waits.wait_for(sequence([DEP_MIN_AVAILABLE_NO_POD]), waits.deployment_state, what="Deployment srv",
                       timeout=600, clock=clock, sleep=clock.sleep,
                       problems=lambda: [waits.pod_problem(crash)], extra=lambda: "--- log ---\nValueError: boom")
    assert clock.sleeps == []
    assert "problems:\n  Pod/srv-5d8-x1 container vllm: CrashLoopBackOff ; last exit 1 (Error)" in str(e.value)
    assert str(e.value).endswith("--- log ---\nValueError: boom")


def test_wait_timeout_lists_states_and_recent_events():
    clock = Clock()
    events = [event("srv-5d8-x1", "FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.", T1),
              event("srv-5d8-x1", "Scheduled", "old", T0, type_="Normal")]
    with pytest.raises(waits.WaitTimeout) as e:
        waits.wait_for(lambda: [DEP_MIN_AVAILABLE_NO_POD], waits.deployment_state, what="Deployment srv",
                       count=1, timeout=30, interval=7, clock=clock, sleep=clock.sleep, events=lambda: events)
    assert clock.sleeps == [7, 7, 7, 7, 2], "never sleeps past the deadline"
    assert str(e.value) == "\n".join([
        "Deployment srv: timed out after 30s (limit 30s) waiting for 1 object(s) in state "
        "available/established/succeeded; found 1",
        "  Deployment/srv: progressing (replicas 1, updated 1, ready 0, available 0; conditions: "
        "Available=True MinimumReplicasAvailable; Progressing=True ReplicaSetUpdated)",
        "recent events (oldest first):",
        "  2026-11-29T10:00:00Z Normal Scheduled Pod/srv-5d8-x1: old",
        "  2026-11-29T10:01:00Z Warning FailedScheduling Pod/srv-5d8-x1: 0/1 nodes are available: 1 Insufficient cpu.",
    ])


def test_wait_timeout_when_nothing_appears_and_events_fail():
    clock = Clock()

    def broken():
        raise ConnectionError("API server went away")
    with pytest.raises(waits.WaitTimeout) as e:
        waits.wait_for(lambda: [], waits.job_state, what="download Job", timeout=10, clock=clock, sleep=clock.sleep,
                       events=broken)
    text = str(e.value)
    assert "found 0\n  (no download Job found)" in text
    assert "EventsUnavailable" in text and "API server went away" in text


def test_wait_count_is_exact():
    clock = Clock()
    two, one = [JOB_130_SUCCEEDED, {**JOB_130_SUCCEEDED, "metadata": {"name": "old"}}], [JOB_130_SUCCEEDED]
    got = waits.wait_for(sequence(two, two, one), waits.job_state, what="jobs", count=1, timeout=60,
                         clock=clock, sleep=clock.sleep)
    assert got == one and len(clock.sleeps) == 2


def test_wait_uses_real_time_by_default():
    start = time.monotonic()
    assert waits.wait_for(lambda: [JOB_130_SUCCEEDED], waits.job_state, what="j", timeout=1) == [JOB_130_SUCCEEDED]
    assert time.monotonic() - start < 1


# --- comparison of live objects with the render -------------------------------------------

def test_diff_subset_and_exact():
    rendered = {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": 2}}}]}
    live = {"containers": [{"name": "c", "terminationMessagePath": "/dev/termination-log",
                            "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": "2"}}}], "dnsPolicy": "ClusterFirst"}
    assert diff(rendered, live) == []
    assert diff(rendered, live, exact=True) == [".containers[0].terminationMessagePath: unexpected "
                                                "'/dev/termination-log'", ".dnsPolicy: unexpected 'ClusterFirst'"]
    pruned = {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2"}}}]}
    assert diff(rendered, pruned) == [".containers[0].resources.limits.nvidia.com/gpu: missing (expected 2)"]
    assert diff({"a": [1, 2]}, {"a": [1]}) == [".a: expected 2 items, found 1: [1]"]
    assert diff({"a": True}, {"a": "True"}) == [".a: expected True, found 'True'"]
    assert diff({"a": 1.0}, {"a": 1}) == []


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
    assert reason.startswith(f"cluster tier: the API server of KUBECONFIG={cfg} does not answer "
                             "(ConnectionRefusedError: [Errno 111] Connection refused while connecting)")
    assert "\n" not in reason
    assert commands.unavailable_reason([str(cfg)], lambda paths: "v1.34.0") is None
    assert commands.required({"CLUSTER_REQUIRED": "1"}) and not commands.required({})


def test_one_line():
    assert commands.one_line("a\n  b\tc") == "a b c"
    assert commands.one_line("x" * 300, 10) == "x" * 9 + "…"


def run_cluster_tier(env_update: dict, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "CLUSTER_REQUIRED", "PYTEST_ADDOPTS")}
    env.update(env_update)
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "cluster", "-p", "no:cacheprovider", "-q",
                           "-rs", "tests/cluster", *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def unreachable_kubeconfig(tmp_path: Path) -> str:
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "x",
           "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
           "users": [{"name": "x", "user": {"token": "t"}}],
           "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}
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
    want = ("the local control plane did not start: Kubernetes 0.0 is not pinned here"
            if setting == "local-cannot-start" else "does not answer")
    assert all(want in line for line in skips), out


def test_cluster_required_turns_the_skip_into_a_failure():
    proc = run_cluster_tier({"CLUSTER_REQUIRED": "1", "K8S_MINOR": "0.0"}, "-k", "rollback")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "local control plane did not start" in proc.stdout and "1 error" in proc.stdout, proc.stdout


# --- command lines -----------------------------------------------------------------------

TOOLS = commands.Tools(helm="helm", kubectl="kubectl", kubeconfig="/k/config", helm_major="3")
CHART = str(ROOT)


def test_helm_install_command():
    argv = commands.helm_install(TOOLS, "ci-workspace", "ns1", values=["values/ci-workspace.yaml"],
                                 sets=["storage.existingClaim=llama-factory"], set_json=["sft.learningRate=2e-5"])
    assert argv == ["helm", "install", "ci-workspace", CHART, "--kubeconfig", "/k/config", "--namespace", "ns1",
                    "-f", f"{CHART}/values/ci-workspace.yaml", "--set", "storage.existingClaim=llama-factory",
                    "--set-json", "sft.learningRate=2e-5", "--timeout", "10m"]


def test_helm_dry_run_command():
    argv = commands.helm_install(TOOLS, "dry-8b-sft", "ns1", values=["values/8b.yaml"], sets=["stages={sft}"],
                                 dry_run="server")
    assert argv[-1] == "--dry-run=server" and "--wait" not in argv
    with pytest.raises(ValueError):
        commands.helm_install(TOOLS, "x", "ns1", dry_run="client")


def test_helm_lifecycle_commands():
    k = ["--kubeconfig", "/k/config", "--namespace", "ns1"]
    assert commands.helm_upgrade(TOOLS, "r", "ns1", values=["values/8b.yaml"]) == \
        ["helm", "upgrade", "r", CHART, *k, "-f", f"{CHART}/values/8b.yaml", "--timeout", "10m"]
    assert commands.helm_rollback(TOOLS, "r", "ns1", 1) == ["helm", "rollback", "r", "1", *k, "--timeout", "10m"]
    assert commands.helm_uninstall(TOOLS, "r", "ns1") == ["helm", "uninstall", "r", *k, "--wait", "--timeout", "10m"]
    assert commands.helm_test(TOOLS, "r", "ns1") == ["helm", "test", "r", *k, "--logs", "--timeout", "10m"]
    assert commands.helm_history(TOOLS, "r", "ns1") == ["helm", "history", "r", *k, "--output", "json"]
    assert commands.helm_template(TOOLS, "r", "ns1", sets=["stages={sft}"]) == \
        ["helm", "template", "r", CHART, "--namespace", "ns1", "--set", "stages={sft}"]


def test_kubectl_commands():
    assert commands.kubectl_apply_server_side(TOOLS, commands.CRD_FILES) == [
        "kubectl", "--kubeconfig", "/k/config", "apply", "--server-side", "--field-manager=llama-factory-e2e",
        "-f", f"{CHART}/tests/crds/deepspeedjobs.batch.tensorstack.dev.yaml",
        "-f", f"{CHART}/tests/crds/notebooks.tensorstack.dev.yaml"]
    assert commands.kubectl_create_dry_run(TOOLS, "ns1") == [
        "kubectl", "--kubeconfig", "/k/config", "create", "--namespace", "ns1", "--dry-run=server",
        "--validate=strict", "-f", "-"]
    assert commands.kubectl_flatten("kubectl") == ["kubectl", "config", "view", "--flatten", "--raw"]


def test_names():
    assert commands.release_name("dry", "70b-4xdp-qlora.yaml", "merge-sft") == "dry-70b-4xdp-qlora-merge-sft"
    assert commands.unique_name("llf-serve", lambda n: "ab" * n) == "llf-serve-ababab"
    with pytest.raises(ValueError):
        commands.release_name("x" * 60)


def test_tool_selection(tmp_path):
    assert commands.helm_major({}) == "3" and commands.helm_major({"CLUSTER_HELM_MAJOR": "4"}) == "4"
    with pytest.raises(ValueError, match="CLUSTER_HELM_MAJOR"):
        commands.helm_major({"CLUSTER_HELM_MAJOR": "2"})
    assert commands.kubectl_path({"CLUSTER_KUBECTL": "/usr/bin/kubectl"}) == "/usr/bin/kubectl"
    pinned = ROOT / ".tools" / "bin" / "kubectl"
    if pinned.exists():
        assert commands.kubectl_path({}) == str(pinned)


def test_format_failure():
    msg = commands.format_failure(["helm", "install", "a b"], 1, "", "Error: INSTALLATION FAILED: boom\n")
    assert msg == "command failed (exit 1): helm install 'a b'\n--- stderr (last 4000 characters) ---\n" \
                  "Error: INSTALLATION FAILED: boom"


def help_text(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def flags(argv: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in argv if a.startswith("--")}


@pytest.mark.parametrize("major", helm.MAJORS)
def test_every_helm_flag_exists_in_the_pinned_helm(major):
    tools = commands.Tools(helm=str(helm.helm_path(major)), kubectl="kubectl", kubeconfig="/k", helm_major=major)
    built = {
        "install": commands.helm_install(tools, "r", "n", values=["values/8b.yaml"], sets=["a=b"],
                                         set_json=["c=1"], dry_run="server"),
        "upgrade": commands.helm_upgrade(tools, "r", "n", values=["values/8b.yaml"], sets=["a=b"], set_json=["c=1"]),
        "rollback": commands.helm_rollback(tools, "r", "n", 1),
        "uninstall": commands.helm_uninstall(tools, "r", "n"),
        "test": commands.helm_test(tools, "r", "n"),
        "history": commands.helm_history(tools, "r", "n"),
        "status": commands.helm_status(tools, "r", "n"),
        "template": commands.helm_template(tools, "r", "n", values=["values/8b.yaml"], sets=["a=b"], set_json=["c=1"]),
    }
    for sub, argv in built.items():
        assert argv[1] == sub
        text = help_text([tools.helm, sub, "--help"])
        missing = [f for f in flags(argv) if f"{f} " not in text and f"{f}=" not in text and f"{f}[" not in text]
        assert not missing, f"helm {major} {sub}: no such flag(s) {missing}"


def test_every_kubectl_flag_exists_in_the_pinned_kubectl():
    kubectl = commands.kubectl_path({})
    tools = commands.Tools(helm="helm", kubectl=kubectl, kubeconfig="/k")
    global_flags = help_text([kubectl, "options"])
    for sub, argv in {"apply": commands.kubectl_apply_server_side(tools, ["f.yaml"]),
                      "apply ": commands.kubectl_apply_manifest(tools, "n", "m"),
                      "diff": commands.kubectl_diff_manifest(tools, "n", "m"),
                      "delete": commands.kubectl_delete_manifest(tools, "n"),
                      "create": commands.kubectl_create_dry_run(tools, "n")}.items():
        sub = sub.strip()
        text = help_text([kubectl, sub, "--help"]) + global_flags
        missing = [f for f in flags(argv) if f"{f}=" not in text and f"{f}:" not in text and f"{f} " not in text]
        assert not missing, f"kubectl {sub}: no such flag(s) {missing}"


# --- CRDs ----------------------------------------------------------------------------------

def test_crd_files_are_ours_and_named_as_the_tier_expects():
    for path in commands.CRD_FILES:
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition"
        assert path.name == f"{crd['metadata']['name']}.yaml"
        assert commands.GENERATED_BY in crd["metadata"].get("annotations", {}), path.name


def test_crd_plan_never_overwrites_a_foreign_crd():
    ours = [{"metadata": {"name": "a.x", "annotations": {commands.GENERATED_BY: "gen"}}},
            {"metadata": {"name": "b.x", "annotations": {commands.GENERATED_BY: "gen"}}},
            {"metadata": {"name": "c.x", "annotations": {commands.GENERATED_BY: "gen"}}}]
    live = {"a.x": None, "b.x": {"metadata": {"annotations": {commands.GENERATED_BY: "old"}}},
            "c.x": {"metadata": {"name": "c.x"}}}
    apply, keep = commands.crd_plan(ours, live)
    assert apply == ["a.x", "b.x"]
    assert list(keep) == ["c.x"] and "not generated by this repo" in keep["c.x"]


# --- the CI overlays -----------------------------------------------------------------------

OVERLAYS = (commands.CI_WORKSPACE, commands.CI_SERVE)


def render(values: str, major: str = "3", sets: tuple[str, ...] = ()) -> tuple[dict, ...]:
    return helm.render(helm.Release(values=(values,), sets=sets, major=major, name="ci"))


def test_overlays_are_not_presets():
    assert not {Path(v).name for v in OVERLAYS} & set(presets())


@pytest.mark.parametrize("values", OVERLAYS)
def test_overlay_renders_alike_with_helm_3_and_4_and_lints(values):
    assert render(values, "3") == render(values, "4")
    for major in helm.MAJORS:
        proc = helm.lint((values,), (), major)
        assert proc.returncode == 0 and "[WARNING]" not in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("version", k8s.K8S_VERSIONS)
@pytest.mark.parametrize("values", OVERLAYS)
def test_overlay_objects_pass_the_kubernetes_schemas(values, version):
    for o in render(values):
        assert k8s.errors(o, version) == [], f"{o['kind']}/{o['metadata']['name']}"


@pytest.mark.parametrize("values", OVERLAYS)
def test_overlay_requests_no_gpu_and_fits_a_ci_runner(values):
    """No extended resource at all; requests small enough for a 4-CPU, 16 GB GitHub runner
    that also runs the kind control plane."""
    for o, spec, _ in pod_templates(render(values)):
        for c in spec["containers"]:
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert set(res.get(part, {})) <= {"cpu", "memory"}, (o["kind"], c["name"], res)
            req = res.get("requests", {})
            cpu = req.get("cpu", "0")
            assert (int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)) <= 1, (o["kind"], req)
            mem = req.get("memory", "0Mi")
            assert int(mem[:-2]) * (1024 if mem.endswith("Gi") else 1) <= 3 * 1024, (o["kind"], req)
    text = yaml.safe_dump_all(render(values))
    assert "gpu" not in text.replace("gpu-memory-utilization", "").lower()


def test_workspace_overlay_makes_a_small_rwo_pvc_and_a_suspended_notebook():
    objects = render(commands.CI_WORKSPACE)
    assert {o["kind"] for o in objects} == {"PersistentVolumeClaim", "Notebook", "ConfigMap", "Job"}
    (pvc,) = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] in ("1Gi", "2Gi")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "storageClassName" not in pvc["spec"], "kind's default class (local-path) must serve it"
    (nb,) = [o for o in objects if o["kind"] == "Notebook"]
    assert nb["spec"]["suspend"] is True
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap"]
    plan = json.loads(cm["data"]["download.json"])
    assert plan["model"]["repo"] == "HuggingFaceTB/SmolLM2-135M" and not plan.get("datasets")


def test_second_workspace_release_reuses_the_claim():
    objects = render(commands.CI_WORKSPACE, sets=("storage.existingClaim=llama-factory", "notebook.enabled=false"))
    assert {o["kind"] for o in objects} == {"ConfigMap", "Job"}
    (job,) = [o for o in objects if o["kind"] == "Job"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert claims == ["llama-factory"]


def test_serve_overlay_serves_what_the_workspace_overlay_downloads():
    ws, sv = render(commands.CI_WORKSPACE), render(commands.CI_SERVE)
    (cm,) = [o for o in ws if o["kind"] == "ConfigMap"]
    target = json.loads(cm["data"]["download.json"])["model"]["target"]
    (pvc,) = [o for o in ws if o["kind"] == "PersistentVolumeClaim"]
    (dep,) = [o for o in sv if o["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["command"] == ["vllm", "serve"] and c["args"][0] == target
    f = dict(a[2:].split("=", 1) if "=" in a else (a[2:], True) for a in c["args"][1:])
    assert f["tensor-parallel-size"] == "1" and f["served-model-name"] == Path(target).name
    assert int(f["max-model-len"]) <= 2048 and f["dtype"] == "float32" and f["enforce-eager"] is True
    claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [pvc["metadata"]["name"]]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    # The download Job runs the serving image: the node pulls one large image, not two.
    (job,) = [o for o in ws if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == c["image"]
    assert "cpu" in c["image"]
    probe = c["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 600
    assert dep["spec"]["progressDeadlineSeconds"] >= probe["periodSeconds"] * probe["failureThreshold"]
    (test_pod,) = [o for o in sv if o["kind"] == "Pod"]
    assert f'"id":"{Path(target).name}"' in test_pod["spec"]["containers"][0]["args"][0]


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
                    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                            "code": 404, "message": f"{path} not found"}
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
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "stub",
               "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{self.server.server_port}"}}],
               "users": [{"name": "stub", "user": {"token": "t"}}],
               "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}]}
        path = tmp_path / "stub-kubeconfig"
        path.write_text(yaml.safe_dump(cfg))
        return str(path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


VERSION = {"major": "1", "minor": "34", "gitVersion": "v1.34.0", "gitCommit": "x", "gitTreeState": "clean",
           "buildDate": "2025-08-27T00:00:00Z", "goVersion": "go1.24.6", "compiler": "gc", "platform": "linux/amd64"}


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
    dj = {"apiVersion": "batch.tensorstack.dev/v1beta1", "kind": "DeepSpeedJob",
          "metadata": {"name": "r-sft-0123abcd", "namespace": "ns"}, "spec": {"config": {"slotsPerWorker": 2}}}
    api = StubAPI({
        "/version": VERSION, "/version/": VERSION,
        "/apis/batch/v1/namespaces/ns/jobs": {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {},
                                              "items": [{k: v for k, v in JOB_131_SUCCEEDED.items() if k != "kind"}]},
        "/apis/apps/v1/namespaces/ns/deployments/srv": {**DEP_MIN_AVAILABLE_NO_POD, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "vllm", "image": "vllm", "args": ["--port=8000"]}]}}}},
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}": crd,
        "/apis/batch.tensorstack.dev/v1beta1/namespaces/ns/deepspeedjobs": {
            "apiVersion": "batch.tensorstack.dev/v1beta1", "kind": "DeepSpeedJobList", "metadata": {}, "items": [dj]},
        "/apis/batch.tensorstack.dev/v1beta1/namespaces/ns/deepspeedjobs/r-sft-0123abcd": dj,
        "/api/v1/namespaces/ns/events": {"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [
            {**event("srv-5d8-x1", "BackOff", "Back-off restarting failed container", T1),
             "metadata": {"name": "srv-5d8-x1.1", "namespace": "ns"}}]},
        "/api/v1/namespaces/ns/pods": {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
            api_pod(pod(waiting={"reason": "CrashLoopBackOff"}, last={"exitCode": 1, "reason": "Error"}))]},
        "/api/v1/namespaces/ns/pods/srv-5d8-x1/log": "INFO starting\nValueError: boom\n",
    })
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
