"""Invariants over pairs of renders: the upgrade rule (a job's name follows what it computes) and
two renders on one PVC; and the agreement of a model's identity fields."""

from __future__ import annotations

import copy
import json
import re

from chartkit.pipeline import pod_templates

from .paths import absolute, plan, rendered_io, stages_of
from .reading import BATCH, configmaps, stage_objects, workload
from .values import Render


def _canon(x) -> str:
    return json.dumps(x, sort_keys=True)


def _batch_jobs(r: Render) -> dict[tuple, dict]:
    return {(o["kind"], r.component(o)): o for o in r.objects if o["kind"] in BATCH}


def job_content(r: Render, o: dict) -> str:
    """What of a job cannot change in place, with the data of the ConfigMaps it
    mounts (ConfigMap names replaced by their data): a Job's pod template
    (immutable; backoffLimit, activeDeadlineSeconds and the TTL may change),
    a DeepSpeedJob's whole spec (the controller does not re-apply a changed
    spec to a job it has started)."""
    spec = copy.deepcopy(o["spec"] if o["kind"] == "DeepSpeedJob" else {"template": o["spec"]["template"]})
    maps = configmaps(r)
    for _, pspec, _ in pod_templates([{**o, "spec": spec} if o["kind"] == "DeepSpeedJob" else {"kind": "Job", "spec": spec}]):
        for vol in pspec.get("volumes") or []:
            if "configMap" in vol:
                vol["configMap"] = {"data": maps.get(vol["configMap"].get("name"))}
    return _canon(spec)


def job_compute(r: Render, o: dict) -> str:
    """What a job computes: images, command lines, environment, working
    directories, the mounted configs and data volumes, and its GPUs and
    workers (the world size changes the optimisation)."""
    maps = configmaps(r)
    out = []
    for _, spec, _ in pod_templates([o]):
        for c in spec.get("containers") or []:
            res = c.get("resources") or {}
            out.append(
                [
                    c.get("image"),
                    c.get("command"),
                    c.get("args"),
                    c.get("env"),
                    c.get("workingDir"),
                    sorted((m.get("mountPath"), m.get("name")) for m in c.get("volumeMounts") or []),
                    {k: x for k, x in (res.get("limits") or {}).items() if k not in ("cpu", "memory")},
                ]
            )
        for vol in spec.get("volumes") or []:
            out.append(
                [
                    vol.get("name"),
                    maps.get(vol["configMap"].get("name")) if "configMap" in vol else {k: x for k, x in vol.items() if k != "name"},
                ]
            )
    if o["kind"] == "DeepSpeedJob":
        out.append([o["spec"].get("config"), o["spec"]["worker"].get("replicas")])
    return _canon(out)


def upgrade_rule(a: Render, b: Render) -> list[str]:
    """The upgrade policy over two renders of one release (before and after a
    values change): a job whose computation changed gets a new name (helm
    upgrade replaces it instead of keeping the old run); a job that keeps its
    name keeps its whole content (Job pod templates are immutable: anything
    else fails the upgrade or is silently ignored); a job whose content is
    unchanged keeps its name (nothing else - labels, the chart version, other
    stages' settings - re-runs finished work). ConfigMaps keep their names."""
    out = []
    if (a.release, a.values.get("nameOverride"), a.values.get("fullnameOverride")) != (
        b.release,
        b.values.get("nameOverride"),
        b.values.get("fullnameOverride"),
    ):
        return out  # other object names: another release, not an upgrade of this one
    ja, jb = _batch_jobs(a), _batch_jobs(b)
    for key in ja.keys() & jb.keys():
        oa, ob = ja[key], jb[key]
        na, nb = oa["metadata"]["name"], ob["metadata"]["name"]
        if job_compute(a, oa) != job_compute(b, ob) and na == nb:
            out.append(f"{key[0]}/{na}: what it computes changed, its name did not (an upgrade keeps the old run)")
        elif na == nb and job_content(a, oa) != job_content(b, ob):
            out.append(f"{key[0]}/{na}: its content changed under the same name (immutable on upgrade)")
        elif na != nb and job_content(a, oa) == job_content(b, ob):
            out.append(f"{key[0]}: renamed {na} -> {nb} with the same content (an upgrade re-runs finished work)")
    cma = {a.component(o): o["metadata"]["name"] for o in a.of("ConfigMap")}
    cmb = {b.component(o): o["metadata"]["name"] for o in b.of("ConfigMap")}
    for comp in cma.keys() & cmb.keys():
        if cma[comp] != cmb[comp]:
            out.append(f"ConfigMap of {comp} renamed {cma[comp]} -> {cmb[comp]}")
    return out


def io_of(r: Render) -> list[tuple[str, list[str], list[str], str]]:
    """(stage, reads, writes, fingerprint of the producing computation) of every stage."""
    out = []
    for stage in stages_of(r):
        got = rendered_io(r, stage)
        if got is None:
            continue
        o = workload(r, stage) if stage != "workspace" else next((x for x in stage_objects(r, stage) if x["kind"] == "Job"), None)
        out.append((stage, [x for x in got[0] if x], [x for x in got[1] if x], o))
    return out


def lineage(r: Render, stage: str, o) -> str:
    """What a written directory holds, release-independent: for the download,
    the model's hub identity; for a stage, the directories it reads and its
    method (LoRA/QLoRA/full) - the same inputs and method make the same kind
    of artefact, whatever the hyperparameters (runs are issue 13)."""
    v = r.values
    if stage == "workspace":
        m = v["model"]
        return _canon(
            [
                "download",
                m["source"],
                m["huggingfaceRepo"] if m["source"] == "huggingface" else m["modelscopeRepo"],
                m["revision"],
                m["parametersBillion"],
            ]
        )
    reads = rendered_io(r, stage)[0]
    extra = [v["training"]["method"], v["training"]["quantizationBits"] if v["training"]["method"] == "qlora" else None]
    return _canon([stage, reads, extra])


def shared_pvc(a: Render, b: Render) -> list[str]:
    """Two renders on one PVC (other presets, methods, stages, releases):
    object names of different releases never collide (the PVC aside), and a
    directory one writes is written by the other only as the same artefact
    (same inputs, same method, same model identity) and read by the other only
    as what the other's path plan expects there."""
    out = []
    if a.release != b.release and a.namespace == b.namespace:
        na = {(o["kind"], o["metadata"]["name"]) for o in a.objects if o["kind"] != "PersistentVolumeClaim"}
        nb = {(o["kind"], o["metadata"]["name"]) for o in b.objects if o["kind"] != "PersistentVolumeClaim"}
        for k, n in sorted(na & nb):
            out.append(f"{k}/{n} rendered by releases {a.release} and {b.release}")
    ia, ib = io_of(a), io_of(b)
    wa = {w: (s, lineage(a, s, o)) for s, _, ws, o in ia for w in ws}
    wb = {w: (s, lineage(b, s, o)) for s, _, ws, o in ib for w in ws}
    for w in wa.keys() & wb.keys():
        if wa[w][1] != wb[w][1]:
            out.append(
                f"{w}: written by {a.release}'s {wa[w][0]} and {b.release}'s {wb[w][0]} from different inputs: {wa[w][1]} vs {wb[w][1]}"
            )
    for src, dst, writes in ((a, b, wa), (b, a, wb)):
        pa = plan(dst.values)
        for s, reads, _, _ in ib if dst is b else ia:
            for rd in reads:
                if rd in writes:
                    role = next((k for k, rel in pa.items() if absolute(dst.values, rel) == rd), None)
                    prod = writes[rd][0]
                    expect = {
                        "base": {"workspace"},
                        "sft": {"sft"},
                        "sftModel": {"merge-sft", "sft"},
                        "dpo": {"dpo"},
                        "dpoModel": {"merge-dpo", "dpo"},
                    }.get(role, set())
                    if prod not in expect:
                        out.append(f"{dst.release}'s {s} reads {rd} as {role}, {src.release}'s {prod} writes it")
    ma, mb = a.values["model"], b.values["model"]
    if ma["name"] == mb["name"] and a.values["storage"]["mountPath"] == b.values["storage"]["mountPath"]:
        for k in ("parametersBillion", "numKeyValueHeads", "huggingfaceRepo", "modelscopeRepo", "revision"):
            if ma[k] != mb[k]:
                out.append(f"model.name {ma['name']!r} with model.{k} {ma[k]!r} and {mb[k]!r}: one directory, two models")
    return out


def identity_fields(v: dict) -> list[str]:
    """A model's identity fields agree with each other: the repositories name
    the model directory's size, and the size matches parametersBillion."""
    m = v["model"]
    out = []
    size = re.search(r"(\d+)B", m["name"])
    for k in ("huggingfaceRepo", "modelscopeRepo"):
        rs = re.search(r"(\d+)B", m[k])
        if size and rs and size.group(1) != rs.group(1):
            out.append(f"model.{k} {m[k]!r} is another size than model.name {m['name']!r}")
    if size and int(size.group(1)) != round(float(m["parametersBillion"])):
        out.append(f"model.parametersBillion {m['parametersBillion']} but model.name says {size.group(1)}B")
    return out
