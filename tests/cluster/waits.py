"""Waiting in the cluster tier: pure predicates over API objects and one wait loop.

Objects are dicts as the API server returns them (camelCase keys). Nothing here talks to a
cluster: the loop takes a getter, a clock and a sleep, so tests/cluster/test_waits.py drives
it with recorded object states and a fake clock.

Why not pytest-helm-charts' waits: its Job wait reads only status.conditions[0] and waits for
"Complete". On Kubernetes 1.31 and later a finished Job gets SuccessCriteriaMet before Complete
(conditions[0] is then never "Complete"), and a failed Job never fails the wait: it runs into
the timeout. Here any condition counts, a failure ends the wait at once with its reason, and a
timeout says what every object was doing and what the cluster's events said.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

SUCCEEDED = "succeeded"
FAILED = "failed"
RUNNING = "running"
AVAILABLE = "available"
PROGRESSING = "progressing"
ESTABLISHED = "established"
GONE = "gone"

JOB_SUCCESS = ("SuccessCriteriaMet", "Complete")  # 1.31+: SuccessCriteriaMet comes first
JOB_FAILURE = ("FailureTarget", "Failed")  # 1.31+: FailureTarget comes first
# Waiting reasons of a container that no amount of waiting repairs.
FATAL_WAITING = ("CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "InvalidImageName", "ErrImageNeverPull")
# An image pull that failed for one of these will fail the same way on every retry.
FATAL_PULL = ("not found", "manifest unknown", "unauthorized", "denied", "no match for platform")


class WaitError(AssertionError):
    """A wait that ended without success; the message says what was seen."""


class WaitFailed(WaitError):
    """An object reached a state it does not leave (a failed Job, a crash-looping pod)."""


class WaitTimeout(WaitError):
    """The time ran out before every object was ready."""


# --- predicates --------------------------------------------------------------------------


def conditions(obj: dict) -> list[dict]:
    return list(((obj or {}).get("status") or {}).get("conditions") or [])


def true_conditions(obj: dict) -> list[dict]:
    return [c for c in conditions(obj) if str(c.get("status")) == "True"]


def name_of(obj: dict) -> str:
    return f"{obj.get('kind', 'object')}/{(obj.get('metadata') or {}).get('name', '?')}"


def job_state(job: dict) -> str:
    """ "succeeded", "failed" or "running", from ANY condition of the Job: Complete or
    SuccessCriteriaMet is success, Failed or FailureTarget is failure."""
    types = {c.get("type") for c in true_conditions(job)}
    if types & set(JOB_FAILURE):
        return FAILED
    if types & set(JOB_SUCCESS):
        return SUCCEEDED
    return RUNNING


def job_failure(job: dict) -> str | None:
    """ "<reason>: <message>" of a failed Job's failure condition, else None."""
    for c in true_conditions(job):
        if c.get("type") in ("Failed", "FailureTarget"):
            return f"{c.get('reason') or c['type']}: {c.get('message') or 'no message'}"
    return None


def deployment_state(dep: dict) -> str:
    """ "available", "failed" (progress deadline exceeded) or "progressing".

    Available means every desired replica is updated and available for the current
    generation. The Available *condition* is not enough: it means "minimum availability",
    which with maxUnavailable=1 and one replica (the chart's strategy) holds with no pod up."""
    for c in conditions(dep):
        if c.get("type") == "Progressing" and str(c.get("status")) == "False" and c.get("reason") == "ProgressDeadlineExceeded":
            return FAILED
    spec, status, meta = dep.get("spec") or {}, dep.get("status") or {}, dep.get("metadata") or {}
    want = spec.get("replicas", 1)
    current = status.get("observedGeneration", 0) >= meta.get("generation", 0)
    ready = all(status.get(k, 0) >= want for k in ("updatedReplicas", "readyReplicas", "availableReplicas"))
    surplus = status.get("replicas", 0) > want  # old pods still terminating
    if current and ready and not surplus:
        return AVAILABLE
    return PROGRESSING


def deployment_available(dep: dict) -> bool:
    return deployment_state(dep) == AVAILABLE


def crd_state(crd: dict) -> str:
    """ "established" once the API server serves the CRD; "failed" when its names clash."""
    for c in conditions(crd):
        if c.get("type") == "NamesAccepted" and str(c.get("status")) == "False":
            return FAILED
    types = {c.get("type") for c in true_conditions(crd)}
    return ESTABLISHED if "Established" in types else RUNNING


def pod_problem(pod: dict) -> str | None:
    """Why a pod will never become ready on its own (one line), or None while there is hope:
    a crash loop, a container that cannot be created, an image that does not exist."""
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason, message = waiting.get("reason"), waiting.get("message") or ""
        last = (cs.get("lastState") or {}).get("terminated") or {}
        previous = f"; last exit {last.get('exitCode')} ({last.get('reason') or 'no reason'})" if last else ""
        if reason in FATAL_WAITING:
            return f"{name_of(pod)} container {cs.get('name')}: {reason} {message}{previous}".rstrip()
        if reason in ("ErrImagePull", "ImagePullBackOff") and any(s in message.lower() for s in FATAL_PULL):
            return f"{name_of(pod)} container {cs.get('name')}: {reason} {message}"
    if status.get("phase") == "Failed" and status.get("reason") == "Evicted":
        return f"{name_of(pod)} evicted: {status.get('message', '')}"
    return None


def describe(obj: dict, state: str) -> str:
    """One line about an object for wait messages: its state and what its status says."""
    status = obj.get("status") or {}
    kind = obj.get("kind")
    if kind == "Job":
        detail = ", ".join(f"{k} {status.get(k, 0)}" for k in ("active", "ready", "succeeded", "failed"))
        failure = job_failure(obj)
        if failure:
            detail += f"; {failure}"
    elif kind == "Deployment":
        detail = f"replicas {(obj.get('spec') or {}).get('replicas', 1)}, " + ", ".join(
            f"{k.removesuffix('Replicas')} {status.get(k, 0)}" for k in ("updatedReplicas", "readyReplicas", "availableReplicas")
        )
    else:
        detail = ""
    conds = "; ".join(f"{c.get('type')}={c.get('status')}" + (f" {c['reason']}" if c.get("reason") else "") for c in conditions(obj))
    parts = [p for p in (detail, f"conditions: {conds or 'none'}") if p]
    return f"{name_of(obj)}: {state} ({'; '.join(parts)})"


# --- events ------------------------------------------------------------------------------


def event_time(event: dict) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get("creationTimestamp") or ""


def related_events(events: Iterable[dict], names: Iterable[str]) -> list[dict]:
    """Events about the named objects or what they own by name (a Job's pods are <job>-xxxxx,
    a Deployment's ReplicaSets and pods <deployment>-<hash>-…), oldest first."""
    names = [n for n in names if n]
    out = []
    for e in events:
        involved = (e.get("involvedObject") or e.get("regarding") or {}).get("name", "")
        if any(involved == n or involved.startswith(n + "-") for n in names):
            out.append(e)
    return sorted(out, key=event_time)


def format_events(events: Sequence[dict], limit: int = 15) -> list[str]:
    """The last `limit` events as lines: time, type, reason, object, message (×count)."""
    lines = []
    for e in sorted(events, key=event_time)[-limit:]:
        obj = e.get("involvedObject") or e.get("regarding") or {}
        count = e.get("count") or (e.get("series") or {}).get("count")
        times = f" (x{count})" if count and int(count) > 1 else ""
        message = " ".join(str(e.get("message") or e.get("note") or "").split())
        lines.append(
            f"{event_time(e) or '-'} {e.get('type', '?')} {e.get('reason', '?')} "
            f"{obj.get('kind', '?')}/{obj.get('name', '?')}: {message}{times}"
        )
    return lines


# --- the wait loop -----------------------------------------------------------------------


def report(
    headline: str,
    objects: Sequence[dict],
    states: Sequence[str],
    *,
    expect: str,
    events: Sequence[dict] | None = None,
    problems: Sequence[str] = (),
    extra: str = "",
) -> str:
    """The message of a wait that did not succeed: what was waited for, every object's state,
    the problems seen, the recent events, and any extra context (e.g. logs)."""
    lines = [headline]
    if objects:
        lines += [f"  {describe(o, s)}" for o, s in zip(objects, states)]
    else:
        lines.append(f"  (no {expect} found)")
    if problems:
        lines.append("problems:")
        lines += [f"  {p}" for p in problems]
    if events is not None:
        lines.append("recent events (oldest first):")
        lines += [f"  {line}" for line in format_events(events)] or ["  (none)"]
    if extra:
        lines.append(extra.rstrip())
    return "\n".join(lines)


def wait_for(
    get: Callable[[], Sequence[dict]],
    state: Callable[[dict], str],
    *,
    what: str,
    timeout: float,
    ok: Iterable[str] = (SUCCEEDED, AVAILABLE, ESTABLISHED),
    bad: Iterable[str] = (FAILED,),
    count: int | None = None,
    problems: Callable[[], Sequence[str]] | None = None,
    events: Callable[[], Sequence[dict]] | None = None,
    extra: Callable[[], str] | None = None,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict]:
    """Poll `get()` until every object it returns is in an `ok` state and there are `count`
    of them (None: at least one). Return the objects.

    Fails fast (WaitFailed) as soon as an object is in a `bad` state or `problems()` reports
    something (e.g. pod_problem over the pods involved); raises WaitTimeout after `timeout`
    seconds of `clock`. Both messages list each object's state, the problems, and the
    recent `events()`, plus `extra()` (e.g. a pod's log)."""
    ok, bad = frozenset(ok), frozenset(bad)
    start = clock()
    while True:
        objects = list(get())
        states = [state(o) for o in objects]
        found = [p for p in (problems() if problems else []) if p]
        failed = [o for o, s in zip(objects, states) if s in bad]
        if failed or found:
            head = f"{what}: failed after {clock() - start:.0f}s"
            raise WaitFailed(report(head, objects, states, expect=what, events=_safe(events), problems=found, extra=_safe_text(extra)))
        enough = len(objects) >= 1 if count is None else len(objects) == count
        if enough and all(s in ok for s in states):
            return objects
        elapsed = clock() - start
        if elapsed >= timeout:
            want = "at least one" if count is None else str(count)
            head = (
                f"{what}: timed out after {elapsed:.0f}s (limit {timeout:.0f}s) waiting for "
                f"{want} object(s) in state {'/'.join(sorted(ok))}; found {len(objects)}"
            )
            raise WaitTimeout(report(head, objects, states, expect=what, events=_safe(events), extra=_safe_text(extra)))
        sleep(max(0.0, min(interval, timeout - elapsed)))


def _safe(events: Callable[[], Sequence[dict]] | None) -> Sequence[dict] | None:
    """The events for a failure message; fetching them must not hide the failure itself."""
    if events is None:
        return None
    try:
        return list(events())
    except Exception as e:  # noqa: BLE001
        return [{"type": "Error", "reason": "EventsUnavailable", "message": f"{type(e).__name__}: {e}"}]


def _safe_text(extra: Callable[[], str] | None) -> str:
    if extra is None:
        return ""
    try:
        return extra()
    except Exception as e:  # noqa: BLE001
        return f"(more context unavailable: {type(e).__name__}: {e})"
