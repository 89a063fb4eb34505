"""Recorded object states for the cluster tier's offline tests (test_waits.py, test_kube_client.py):
Jobs (including a Kubernetes 1.31 Job whose SuccessCriteriaMet comes before Complete),
Deployments, Pods and Events as the API server returns them."""

from __future__ import annotations

T0, T1, T2 = "2026-11-29T10:00:00Z", "2026-11-29T10:01:00Z", "2026-11-29T10:02:00Z"


def job(name="dl", conditions=(), **status):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "status": {**status, "conditions": list(conditions)}}


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
JOB_131_SUCCESS_CRITERIA_ONLY = job(
    conditions=[cond("SuccessCriteriaMet", reason="CompletionsReached", message="Reached expected number of succeeded pods")], succeeded=1
)
JOB_131_SUCCEEDED = job(
    conditions=[cond("SuccessCriteriaMet", reason="CompletionsReached", t=T1), cond("Complete", reason="CompletionsReached", t=T2)],
    succeeded=1,
)
JOB_130_SUCCEEDED = job(conditions=[cond("Complete")], succeeded=1)
JOB_BACKOFF_LIMIT = job(
    conditions=[
        cond("FailureTarget", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit"),
        cond("Failed", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit", t=T2),
    ],
    failed=3,
)
JOB_131_FAILURE_TARGET_ONLY = job(
    conditions=[cond("FailureTarget", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")], failed=3
)
JOB_DEADLINE = job(
    conditions=[cond("Failed", reason="DeadlineExceeded", message="Job was active longer than specified deadline")], failed=1
)
JOB_SUSPENDED = job(conditions=[cond("Suspended", reason="JobSuspended")])
JOB_FAILED_FALSE = job(conditions=[cond("Failed", status="False")], active=1)


def deployment(replicas=1, generation=2, observed=2, updated=1, ready=1, available=1, total=None, conditions=()):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "srv", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas if total is None else total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    }


DEP_AVAILABLE = deployment(
    conditions=[cond("Available", reason="MinimumReplicasAvailable"), cond("Progressing", reason="NewReplicaSetAvailable")]
)
# maxUnavailable=1 with one replica: the Available condition holds with no pod ready.
DEP_MIN_AVAILABLE_NO_POD = deployment(
    ready=0, available=0, conditions=[cond("Available", reason="MinimumReplicasAvailable"), cond("Progressing", reason="ReplicaSetUpdated")]
)
DEP_STALE_GENERATION = deployment(observed=1, conditions=[cond("Available")])
DEP_OLD_POD_TERMINATING = deployment(total=2, conditions=[cond("Available")])
DEP_DEADLINE = deployment(
    ready=0,
    available=0,
    conditions=[
        cond("Progressing", status="False", reason="ProgressDeadlineExceeded", message='ReplicaSet "srv-5d8" has timed out progressing.')
    ],
)


def pod(name="srv-5d8-x1", waiting=None, last=None, phase="Pending", **status):
    cs = {"name": "vllm", "ready": False, "restartCount": 3 if last else 0, "state": {}}
    if waiting:
        cs["state"] = {"waiting": waiting}
    if last:
        cs["lastState"] = {"terminated": last}
    return {"kind": "Pod", "metadata": {"name": name}, "status": {"phase": phase, "containerStatuses": [cs], **status}}


def event(name, reason, message, t, type_="Warning", kind="Pod", count=1):
    return {
        "kind": "Event",
        "type": type_,
        "reason": reason,
        "message": message,
        "lastTimestamp": t,
        "count": count,
        "involvedObject": {"kind": kind, "name": name},
    }
