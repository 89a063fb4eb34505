"""The cluster tier's waits, decided without a cluster: the wait predicates on recorded object
states (recorded.py, including a Kubernetes 1.31 Job whose SuccessCriteriaMet comes before
Complete), the events they report, and the wait loop on a fake clock with its failure messages
(waits.py).

Not marked `cluster`: runs everywhere."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import waits
from recorded import (
    DEP_AVAILABLE,
    DEP_DEADLINE,
    DEP_MIN_AVAILABLE_NO_POD,
    DEP_OLD_POD_TERMINATING,
    DEP_STALE_GENERATION,
    JOB_130_SUCCEEDED,
    JOB_131_FAILURE_TARGET_ONLY,
    JOB_131_SUCCEEDED,
    JOB_131_SUCCESS_CRITERIA_ONLY,
    JOB_BACKOFF_LIMIT,
    JOB_DEADLINE,
    JOB_FAILED_FALSE,
    JOB_PENDING_NO_STATUS,
    JOB_RUNNING,
    JOB_SUSPENDED,
    T0,
    T1,
    T2,
    cond,
    event,
    pod,
)

# --- predicates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj,state",
    [
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
    ],
    ids=[
        "running",
        "no-status",
        "suspended",
        "failed-false",
        "1.31-success-criteria-only",
        "1.31-succeeded",
        "1.30-succeeded",
        "backoff-limit",
        "1.31-failure-target-only",
        "deadline",
    ],
)
def test_job_state_reads_any_condition(obj, state):
    assert waits.job_state(obj) == state


def test_pytest_helm_charts_job_wait_misses_the_131_success():
    """Why the tier has its own wait: the plugin reads conditions[0] == Complete only."""
    from pytest_helm_charts.k8s.job import _job_complete

    assert _job_complete(SimpleNamespace(obj=JOB_130_SUCCEEDED))
    assert not _job_complete(SimpleNamespace(obj=JOB_131_SUCCEEDED))
    assert waits.job_state(JOB_131_SUCCEEDED) == waits.SUCCEEDED


def test_job_failure_names_reason_and_message():
    assert waits.job_failure(JOB_BACKOFF_LIMIT) == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    assert waits.job_failure(JOB_DEADLINE) == "DeadlineExceeded: Job was active longer than specified deadline"
    assert waits.job_failure(JOB_131_SUCCEEDED) is None


@pytest.mark.parametrize(
    "obj,state",
    [
        (DEP_AVAILABLE, waits.AVAILABLE),
        (DEP_MIN_AVAILABLE_NO_POD, waits.PROGRESSING),
        (DEP_STALE_GENERATION, waits.PROGRESSING),
        (DEP_OLD_POD_TERMINATING, waits.PROGRESSING),
        (DEP_DEADLINE, waits.FAILED),
    ],
    ids=["available", "available-condition-without-pod", "stale-generation", "old-pod-left", "deadline"],
)
def test_deployment_state(obj, state):
    assert waits.deployment_state(obj) == state
    assert waits.deployment_available(obj) is (state == waits.AVAILABLE)


@pytest.mark.parametrize(
    "obj,expect",
    [
        (pod(waiting={"reason": "ContainerCreating"}), None),
        (pod(waiting={"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x": toomanyrequests: rate limit'}), None),
        (
            pod(
                waiting={"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=vllm"},
                last={"exitCode": 1, "reason": "Error"},
            ),
            "CrashLoopBackOff",
        ),
        (pod(waiting={"reason": "ErrImagePull", "message": 'failed to pull "docker.io/vllm/x:v9": not found'}), "ErrImagePull"),
        (pod(waiting={"reason": "CreateContainerConfigError", "message": 'secret "hf-token" not found'}), "CreateContainerConfigError"),
        (pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory."), "evicted"),
        (pod(phase="Running"), None),
    ],
    ids=["creating", "pull-rate-limit", "crash-loop", "image-not-found", "missing-secret", "evicted", "running"],
)
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
    crd = {
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "x"},
        "status": {"conditions": [cond("NamesAccepted"), cond("Established")]},
    }
    assert waits.crd_state(crd) == waits.ESTABLISHED
    crd["status"]["conditions"][1]["status"] = "False"
    assert waits.crd_state(crd) == waits.RUNNING
    crd["status"]["conditions"][0] = cond("NamesAccepted", status="False", reason="ListKindConflict")
    assert waits.crd_state(crd) == waits.FAILED


# --- events ------------------------------------------------------------------------------


def test_related_events_follow_owned_names_and_sort_by_time():
    events = [
        event("dl-abc12", "BackOff", "Back-off restarting", T2),
        event("dl", "SuccessfulCreate", "Created pod: dl-abc12", T0, type_="Normal", kind="Job"),
        event("dlx", "Other", "not ours", T1),
        event("other", "Other", "not ours", T1),
    ]
    got = waits.related_events(events, ["dl"])
    assert [e["reason"] for e in got] == ["SuccessfulCreate", "BackOff"]


def test_format_events_keeps_the_last_and_counts():
    events = [event("p", f"R{i}", f"message {i}\nsecond line", f"2026-11-29T10:00:{i:02d}Z", count=i) for i in range(20)]
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
    got = waits.wait_for(
        sequence([], [JOB_RUNNING], [JOB_131_SUCCESS_CRITERIA_ONLY]),
        waits.job_state,
        what="download Job",
        count=1,
        timeout=60,
        interval=5,
        clock=clock,
        sleep=clock.sleep,
    )
    assert got == [JOB_131_SUCCESS_CRITERIA_ONLY]
    assert clock.sleeps == [5, 5]


def test_wait_fails_fast_with_the_failure_reason():
    clock = Clock()
    with pytest.raises(waits.WaitFailed) as e:
        waits.wait_for(
            sequence([JOB_RUNNING], [JOB_BACKOFF_LIMIT]),
            waits.job_state,
            what="download Job",
            count=1,
            timeout=3600,
            interval=5,
            clock=clock,
            sleep=clock.sleep,
            events=lambda: [event("dl-abc12", "BackOff", "Back-off restarting failed container", T1)],
        )
    assert clock.sleeps == [5], "a failed Job must end the wait at once"
    text = str(e.value)
    assert text.startswith("download Job: failed after 5s")
    assert (
        "Job/dl: failed (active 0, ready 0, succeeded 0, failed 3; BackoffLimitExceeded: Job has reached the "
        "specified backoff limit" in text
    )
    assert "Back-off restarting failed container" in text


def test_wait_fails_fast_on_a_pod_problem():
    clock = Clock()
    crash = pod(waiting={"reason": "CrashLoopBackOff"}, last={"exitCode": 1, "reason": "Error"})
    with pytest.raises(waits.WaitFailed) as e:
        waits.wait_for(
            sequence([DEP_MIN_AVAILABLE_NO_POD]),
            waits.deployment_state,
            what="Deployment srv",
            timeout=600,
            clock=clock,
            sleep=clock.sleep,
            problems=lambda: [waits.pod_problem(crash)],
            extra=lambda: "--- log ---\nValueError: boom",
        )
    assert clock.sleeps == []
    assert "problems:\n  Pod/srv-5d8-x1 container vllm: CrashLoopBackOff ; last exit 1 (Error)" in str(e.value)
    assert str(e.value).endswith("--- log ---\nValueError: boom")


def test_wait_timeout_lists_states_and_recent_events():
    clock = Clock()
    events = [
        event("srv-5d8-x1", "FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.", T1),
        event("srv-5d8-x1", "Scheduled", "old", T0, type_="Normal"),
    ]
    with pytest.raises(waits.WaitTimeout) as e:
        waits.wait_for(
            lambda: [DEP_MIN_AVAILABLE_NO_POD],
            waits.deployment_state,
            what="Deployment srv",
            count=1,
            timeout=30,
            interval=7,
            clock=clock,
            sleep=clock.sleep,
            events=lambda: events,
        )
    assert clock.sleeps == [7, 7, 7, 7, 2], "never sleeps past the deadline"
    assert str(e.value) == "\n".join(
        [
            "Deployment srv: timed out after 30s (limit 30s) waiting for 1 object(s) in state available/established/succeeded; found 1",
            "  Deployment/srv: progressing (replicas 1, updated 1, ready 0, available 0; conditions: "
            "Available=True MinimumReplicasAvailable; Progressing=True ReplicaSetUpdated)",
            "recent events (oldest first):",
            "  2026-11-29T10:00:00Z Normal Scheduled Pod/srv-5d8-x1: old",
            "  2026-11-29T10:01:00Z Warning FailedScheduling Pod/srv-5d8-x1: 0/1 nodes are available: 1 Insufficient cpu.",
        ]
    )


def test_wait_timeout_when_nothing_appears_and_events_fail():
    clock = Clock()

    def broken():
        raise ConnectionError("API server went away")

    with pytest.raises(waits.WaitTimeout) as e:
        waits.wait_for(lambda: [], waits.job_state, what="download Job", timeout=10, clock=clock, sleep=clock.sleep, events=broken)
    text = str(e.value)
    assert "found 0\n  (no download Job found)" in text
    assert "EventsUnavailable" in text and "API server went away" in text


def test_wait_count_is_exact():
    clock = Clock()
    two, one = [JOB_130_SUCCEEDED, {**JOB_130_SUCCEEDED, "metadata": {"name": "old"}}], [JOB_130_SUCCEEDED]
    got = waits.wait_for(sequence(two, two, one), waits.job_state, what="jobs", count=1, timeout=60, clock=clock, sleep=clock.sleep)
    assert got == one and len(clock.sleeps) == 2


def test_wait_uses_real_time_by_default():
    start = time.monotonic()
    assert waits.wait_for(lambda: [JOB_130_SUCCEEDED], waits.job_state, what="j", timeout=1) == [JOB_130_SUCCEEDED]
    assert time.monotonic() - start < 1
