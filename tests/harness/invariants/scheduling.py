"""Identity and placement: the chart's labels on every object and pod template, and where each
pod runs (common settings, GPU settings and its stage's own), with its queue, priority and
image."""

from __future__ import annotations

from chartkit.pipeline import pod_templates

from .reading import BATCH, _gpus
from .values import Render


def identity(r: Render) -> list[str]:
    """Every object carries the chart's labels with the release as instance and
    the stage as component; a pod template's labels are the stable subset
    (no chart or app version: Job pod templates are immutable) plus
    common.podLabels and, for pods the T9k scheduler places directly, the queue."""
    out, v = [], r.values
    want_name = v.get("nameOverride") or "llama-factory"
    for o in r.objects:
        labels = (o.get("metadata") or {}).get("labels") or {}
        where = f"{o['kind']}/{o['metadata']['name']}"
        for k, val in (
            ("app.kubernetes.io/instance", r.release),
            ("app.kubernetes.io/name", want_name),
            ("app.kubernetes.io/part-of", "llama-factory"),
            ("app.kubernetes.io/managed-by", "Helm"),
        ):
            if labels.get(k) != val:
                out.append(f"{where}: label {k}={labels.get(k)!r}, expected {val!r}")
        if not labels.get("app.kubernetes.io/component"):
            out.append(f"{where}: no component label")
    # A bare Pod (the helm test) is its own template: its labels carry common.podLabels too.
    for o, _spec, meta in pod_templates(r.objects):
        labels = meta.get("labels") or {}
        where = f"{o['kind']}/{o['metadata']['name']} pod template"
        if o["kind"] == "Notebook":
            continue
        for k in ("app.kubernetes.io/instance", "app.kubernetes.io/name", "app.kubernetes.io/component"):
            if labels.get(k) != o["metadata"]["labels"].get(k):
                out.append(f"{where}: {k} differs from the object's")
        for k, val in (v["common"]["podLabels"] or {}).items():
            if labels.get(k) != val:
                out.append(f"{where}: common.podLabels.{k} missing")
        if o["kind"] in BATCH:
            for k in ("helm.sh/chart", "app.kubernetes.io/version"):
                if k in labels:
                    out.append(f"{where}: {k} in an immutable pod template (a chart upgrade would fail on it)")
        q = stage_setting(v, pod_block(r, o), "queue")
        if o["kind"] in ("Job", "Deployment") and bool(q) != (labels.get("scheduler.tensorstack.dev/queue") == q):
            out.append(f"{where}: queue label {labels.get('scheduler.tensorstack.dev/queue')!r}, queue {q!r}")
    return out


BLOCKS = {
    "workspace": "download",
    "sft": "sft",
    "dpo": "dpo",
    "merge-sft": "merge",
    "merge-dpo": "merge",
    "eval": "eval",
    "serve": "serving",
    "serve-test": None,
}
DEFAULT_IMAGE = {"notebook": "notebook", "serving": "vllm", None: "test"}


def pod_block(r: Render, o: dict) -> str | None:
    """The values block (download, notebook, sft, ..., serving) whose `scheduling` and `image`
    a pod follows; None for the helm test Pod (common settings only)."""
    return "notebook" if o["kind"] == "Notebook" else BLOCKS.get(r.component(o))


def stage_setting(v: dict, block: str | None, key: str):
    """A stage's scheduling key over common's (the queue and priority live in common.scheduler)."""
    own = ((v.get(block) or {}).get("scheduling") or {}).get(key) if block else None
    if own not in (None, "", {}):
        return own
    c = v["common"]
    return c["scheduler"].get(key) if key in ("queue", "priority") else c.get(key)


def expected_image(v: dict, block: str | None) -> str:
    img = dict(v["images"][DEFAULT_IMAGE.get(block, "llamaFactory")])
    own = (v.get(block) or {}).get("image") or {} if block else {}
    if own.get("repository") or own.get("tag"):
        img["digest"] = ""
    img.update({k: x for k, x in own.items() if x})
    reg = v["common"]["imageRegistry"] or img["registry"]
    return f"{reg}/{img['repository']}@{img['digest']}" if img["digest"] else f"{reg}/{img['repository']}:{img['tag']}"


def placement(r: Render) -> list[str]:
    """Every pod runs where its values say: common.nodeSelector and common.tolerations on all,
    common.gpu's node selector and tolerations exactly on the pods that request GPUs (never on
    the download Job, a CPU merge or the helm test Pod), then its own stage's `scheduling` (and
    no other stage's); its stage's queue, priority and image; common.labels on every object and
    pod."""
    out, v = [], r.values
    c = v["common"]
    gpu_name = c["gpu"]["resourceName"]
    for o in r.objects:
        labels = (o.get("metadata") or {}).get("labels") or {}
        for k, val in (c.get("labels") or {}).items():
            if labels.get(k) != val:
                out.append(f"{o['kind']}/{o['metadata']['name']}: common.labels.{k} missing")
    for o, spec, meta in pod_templates(r.objects):
        where = f"{o['kind']}/{o['metadata']['name']}"
        block = pod_block(r, o)
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        gpus = bool(gpu_name) and any(_gpus(x, gpu_name)[0] > 0 for x in containers)
        sched = ((v.get(block) or {}).get("scheduling") or {}) if block else {}
        want_sel = {
            **(c.get("nodeSelector") or {}),
            **((c["gpu"].get("nodeSelector") or {}) if gpus else {}),
            **(sched.get("nodeSelector") or {}),
        }
        if (spec.get("nodeSelector") or {}) != want_sel:
            out.append(
                f"{where}: nodeSelector {spec.get('nodeSelector')}, expected {want_sel} "
                f"({'a GPU pod' if gpus else 'no GPUs'}, stage {block})"
            )
        want_tol = (c.get("tolerations") or []) + ((c["gpu"].get("tolerations") or []) if gpus else []) + (sched.get("tolerations") or [])
        if (spec.get("tolerations") or []) != want_tol:
            out.append(f"{where}: tolerations {spec.get('tolerations')}, expected {want_tol}")
        for key in ("affinity", "priorityClassName", "runtimeClassName", "serviceAccountName"):
            want = stage_setting(v, block, key) or None
            if spec.get(key) != want:
                out.append(f"{where}: {key} {spec.get(key)!r}, expected {want!r} (stage {block})")
        queue = stage_setting(v, block, "queue") or None
        if o["kind"] in ("DeepSpeedJob", "Notebook"):
            t9k = (o["spec"].get("scheduler") or {}).get("t9kScheduler") or {}
            if t9k.get("queue") != queue:
                out.append(f"{where}: T9k queue {t9k.get('queue')!r}, expected {queue!r}")
            if o["kind"] == "DeepSpeedJob" and queue and t9k.get("priority") != stage_setting(v, block, "priority"):
                out.append(f"{where}: priority {t9k.get('priority')!r}, expected {stage_setting(v, block, 'priority')!r}")
        elif (spec.get("schedulerName") == "t9k-scheduler") != bool(queue):
            out.append(f"{where}: schedulerName {spec.get('schedulerName')!r} with queue {queue!r}")
        pod_labels = ((o.get("metadata") or {}) if o["kind"] == "Notebook" else meta).get("labels") or {}
        for k in c.get("labels") or {}:
            if k not in pod_labels:
                out.append(f"{where}: pod without common.labels.{k}")
        image = expected_image(v, block)
        for x in containers:
            if x.get("image") != image:
                out.append(f"{where}/{x['name']}: image {x.get('image')!r}, expected {image!r}")
    return out
