"""What the API server refuses that no JSON schema says: name formats, label and annotation
syntax, container/port/volume/env names, ConfigMap keys and size, extended resources, and
Service -> selector -> pod -> port."""

from __future__ import annotations

import re

from chartkit.pipeline import pod_templates

from .values import Render

# Kubernetes validation as documented (Object Names and IDs; Labels and Selectors;
# Annotations; k8s.io/apimachinery/pkg/util/validation).
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# Kinds whose names are DNS-1035 labels (Services) or DNS-1123 labels; the rest are subdomains.
NAME_RULES = {"Service": ("DNS-1035 label", DNS1035_LABEL, 63)}


def qualified_name_problems(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    out = []
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        out.append(f"prefix {prefix!r} is not a DNS-1123 subdomain")
    if not name or len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        out.append(f"name part {name!r} is not a qualified name (<= 63, alphanumeric at both ends, -_. inside)")
    return out


def _labels(where: str, labels, out: list) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        out.append(f"{where}: labels are not a map")
        return
    for k, val in labels.items():
        for p in qualified_name_problems(str(k)):
            out.append(f"{where}: label key {k!r}: {p}")
        if not isinstance(val, str) or len(val) > 63 or not LABEL_VALUE.fullmatch(val):
            out.append(f"{where}: label {k}={val!r}: not a valid label value")


def _annotations(where: str, ann, out: list) -> None:
    if ann is None:
        return
    if not isinstance(ann, dict):
        out.append(f"{where}: annotations are not a map")
        return
    total = 0
    for k, val in ann.items():
        for p in qualified_name_problems(str(k)):
            out.append(f"{where}: annotation key {k!r}: {p}")
        if not isinstance(val, str):
            out.append(f"{where}: annotation {k} is not a string")
        total += len(str(k)) + len(str(val))
    if total > 256 * 1024:
        out.append(f"{where}: annotations total {total} bytes, over 256 KiB")


def data_key_ok(key) -> bool:
    """apimachinery's IsConfigMapKey: a key of a ConfigMap's or Secret's data."""
    return (
        isinstance(key, str)
        and 0 < len(key) <= 253
        and bool(CONFIGMAP_KEY.fullmatch(key))
        and key not in (".", "..")
        and not key.startswith("..")
    )


def _name(where: str, name, rule, out: list) -> None:
    what, rx, n = rule
    if not isinstance(name, str) or len(name) > n or not rx.fullmatch(name):
        out.append(f"{where}: {name!r} is not a {what} (<= {n} characters)")


def apiserver_rules(objects) -> list[str]:
    """What the API server checks that no JSON schema says: name formats of
    every kind, label and annotation syntax (objects, pod templates,
    selectors), container/port/volume/env names, ConfigMap keys and size,
    extended resources requested as limited, probe and Service ports that name
    a container port, and Service -> selector -> pod -> port: every Service
    selects the pods of a workload of the render, whose container has the
    port its targetPort names. Job pods get a `job-name` label, so Job names
    are label values (<= 63); the T9k controller names pods
    <DeepSpeedJob>-worker-<i> (<= 63), so DeepSpeedJob names stay <= 52."""
    out: list[str] = []
    subdomain = ("DNS-1123 subdomain", DNS1123_SUBDOMAIN, 253)
    pods = []
    for o in objects:
        meta = o.get("metadata") or {}
        kind, name = o.get("kind"), meta.get("name")
        where = f"{kind}/{name}"
        _name(where, name, NAME_RULES.get(kind, subdomain), out)
        if kind == "Job" and isinstance(name, str) and len(name) > 63:
            out.append(f"{where}: a Job name is also its pods' job-name label value (<= 63)")
        if kind == "DeepSpeedJob" and isinstance(name, str) and len(name) > 52:
            out.append(f"{where}: pod names <name>-worker-<i> would exceed 63 characters")
        _labels(where, meta.get("labels"), out)
        _annotations(where, meta.get("annotations"), out)
        if kind == "ConfigMap":
            size = 0
            for k, val in (o.get("data") or {}).items():
                if not data_key_ok(k):
                    out.append(f"{where}: data key {k!r} is not a valid ConfigMap key")
                size += len(k) + len(str(val).encode())
            if size > 1024 * 1024:
                out.append(f"{where}: {size} bytes of data, over the 1 MiB limit")
        if kind == "PersistentVolumeClaim":
            modes = (o.get("spec") or {}).get("accessModes") or []
            if "ReadWriteOncePod" in modes and len(modes) > 1:
                out.append(f"{where}: accessModes may not use ReadWriteOncePod with other access modes")
        if kind in ("Deployment", "Job"):
            sel = (o.get("spec", {}).get("selector") or {}).get("matchLabels")
            _labels(f"{where} selector", sel, out)
    for o, spec, meta in pod_templates(objects):
        where = f"{o['kind']}/{(o.get('metadata') or {}).get('name')}"
        if o["kind"] != "Pod":  # a bare Pod's metadata was checked above as an object's
            _labels(f"{where} pod template", meta.get("labels"), out)
            _annotations(f"{where} pod template", meta.get("annotations"), out)
        pods.append((o, spec, meta))
        vnames = [x.get("name") for x in spec.get("volumes") or []]
        for n in vnames:
            _name(f"{where} volume", n, ("DNS-1123 label", DNS1123_LABEL, 63), out)
        cnames = [c.get("name") for c in spec.get("containers") or []]
        if len(set(cnames)) != len(cnames):
            out.append(f"{where}: container names repeat: {cnames}")
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            cw = f"{where}/{c.get('name')}"
            _name(f"{where} container", c.get("name"), ("DNS-1123 label", DNS1123_LABEL, 63), out)
            ports = c.get("ports") or []
            pnames = [p.get("name") for p in ports if p.get("name") is not None]
            if len(set(pnames)) != len(pnames):
                out.append(f"{cw}: port names repeat")
            for p in ports:
                n = p.get("name")
                if n is not None and (len(n) > 15 or not IANA_SVC_NAME.fullmatch(n) or "--" in n or not re.search("[a-z]", n)):
                    out.append(f"{cw}: port name {n!r} is not an IANA_SVC_NAME")
                if not 1 <= int(p.get("containerPort", 0)) <= 65535:
                    out.append(f"{cw}: containerPort {p.get('containerPort')} out of range")
            for e in c.get("env") or []:
                if not isinstance(e.get("name"), str) or not ENV_VAR_NAME.fullmatch(e["name"]):
                    out.append(f"{cw}: env name {e.get('name')!r} is not a valid environment variable name")
                for ref in ("secretKeyRef", "configMapKeyRef"):
                    r = (e.get("valueFrom") or {}).get(ref)
                    if r is None:
                        continue
                    _name(f"{cw} env {e.get('name')} {ref}", r.get("name"), subdomain, out)
                    if not data_key_ok(r.get("key")):
                        out.append(f"{cw}: env {e.get('name')} {ref}.key {r.get('key')!r} is not a valid data key")
            res = c.get("resources") or {}
            lim, req = res.get("limits") or {}, res.get("requests") or {}
            for k in set(lim) | set(req):
                for p in qualified_name_problems(k):
                    out.append(f"{cw}: resource name {k!r}: {p}")
                if "/" in k and not k.startswith("kubernetes.io/") and k in req and k in lim and str(req[k]) != str(lim[k]):
                    out.append(f"{cw}: extended resource {k}: request {req[k]} != limit {lim[k]}")
                if "/" in k and k in req and k not in lim:
                    out.append(f"{cw}: extended resource {k} requested without a limit")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in pnames:
                    out.append(f"{cw}: {probe} port {port!r} names no container port")
    for svc in (o for o in objects if o.get("kind") == "Service"):
        where = f"Service/{svc['metadata']['name']}"
        sel = svc["spec"].get("selector") or {}
        _labels(f"{where} selector", sel, out)
        selected = [
            (o, spec)
            for o, spec, meta in pods
            if o.get("kind") != "Pod" and sel and all((meta.get("labels") or {}).get(k) == val for k, val in sel.items())
        ]
        if not selected:
            out.append(f"{where}: selector {sel} selects no pod template of the render")
        for p in svc["spec"].get("ports") or []:
            tp = p.get("targetPort", p.get("port"))
            for o, spec in selected:
                cports = [cp for c in spec.get("containers") or [] for cp in c.get("ports") or []]
                if not any(cp.get("name") == tp or cp.get("containerPort") == tp for cp in cports):
                    out.append(f"{where}: targetPort {tp!r} is no container port of {o['kind']}/{o['metadata']['name']}")
    for d in (o for o in objects if o.get("kind") == "Deployment"):
        sel = (d["spec"].get("selector") or {}).get("matchLabels") or {}
        labels = (d["spec"]["template"].get("metadata") or {}).get("labels") or {}
        if not sel or any(labels.get(k) != val for k, val in sel.items()):
            out.append(f"Deployment/{d['metadata']['name']}: selector {sel} does not select its pod template")
    return out


def api_server(r: Render) -> list[str]:
    return apiserver_rules(r.objects)
