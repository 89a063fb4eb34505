"""Wiring inside a pod: ConfigMap volumes and the files named under their mount paths, the
workspace PVC, /tmp, /dev/shm, extra volumes, and requests within limits."""

from __future__ import annotations

import json
import re

from chartkit.pipeline import pod_templates

from .reading import CONFIG_PATH, config_file, configmaps, mounted_config
from .values import Render

_CM_REF = re.compile(r"(/[\w./-]+)")


def configmap_wiring(r: Render) -> list[str]:
    """Every configMap volume names a ConfigMap of the render; every file a
    container or config names under a ConfigMap's mount path is a key of that
    ConfigMap; every ConfigMap is mounted by some pod; LLaMA-Factory's
    dataset_dir holds dataset_info.json and every dataset the config names."""
    out, maps = [], configmaps(r)
    used = set()
    for o, spec, _ in pod_templates(r.objects):
        where = f"{o['kind']}/{o['metadata']['name']}"
        vols = {v.get("name"): v["configMap"].get("name") for v in spec.get("volumes") or [] if "configMap" in v}
        config_text = json.dumps(o.get("spec", {}).get("config", {}))
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            text = json.dumps([c.get("command"), c.get("args"), c.get("env")]) + config_text
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in vols:
                    continue
                cm = vols[m["name"]]
                used.add(cm)
                if cm not in maps:
                    out.append(f"{where}: volume {m['name']} names ConfigMap {cm}, which the render lacks")
                    continue
                data = maps[cm]
                root = m["mountPath"].rstrip("/") + "/"
                refs = {p[len(root) :] for p in _CM_REF.findall(text + json.dumps(list(data.values()))) if p.startswith(root)}
                if not refs:
                    out.append(f"{where}: nothing refers to {root}")
                for ref in sorted(refs - set(data)):
                    out.append(f"{where}: {root}{ref} is not a key of ConfigMap {cm}")
        if o["kind"] == "DeepSpeedJob":
            cfg = config_file(r, o, "train.yaml") or {}
            data = mounted_config(r, spec)
            info = json.loads(data.get("dataset_info.json", "{}"))
            if cfg.get("dataset_dir") != CONFIG_PATH or "dataset_info.json" not in data:
                out.append(f"{where}: dataset_dir {cfg.get('dataset_dir')} does not hold dataset_info.json")
            for d in str(cfg.get("dataset", "")).split(","):
                if d and d not in info:
                    out.append(f"{where}: dataset {d!r} is not in dataset_info.json")
            ds_path = cfg.get("deepspeed", "")
            if ds_path != f"{CONFIG_PATH}/ds_config.json" or "ds_config.json" not in data:
                out.append(f"{where}: deepspeed config {ds_path!r} is not the mounted ds_config.json")
    for name in maps:
        if name not in used:
            out.append(f"ConfigMap/{name} is mounted by no pod")
    return out


def _mib(q: str) -> int:
    q = str(q)
    for unit, f in (("Ti", 1024**2), ("Gi", 1024), ("Mi", 1)):
        if q.endswith(unit):
            return int(float(q[:-2]) * f)
    return int(int(q) / 2**20)


def _millicores(q) -> float:
    q = str(q)
    return float(q[:-1]) if q.endswith("m") else float(q) * 1000


def volume_wiring(r: Render) -> list[str]:
    """Every chart pod mounts the workspace PVC (storage.existingClaim or
    storage.name) at storage.mountPath and works there, has /tmp and a Memory
    /dev/shm of the stage's shmSize inside half its memory limit, and mounts
    every common.extraVolumes entry at its path; requests stay within limits;
    the PVC the workspace stage creates is the one the pods claim and is kept
    on uninstall."""
    out, v = [], r.values
    claim = v["storage"]["existingClaim"] or v["storage"]["name"]
    mount = v["storage"]["mountPath"]
    shm = {
        "sft": v["training"]["shmSize"],
        "dpo": v["training"]["shmSize"],
        "eval": v["eval"]["shmSize"],
        "serve": v["serving"]["shmSize"],
        "workspace": None,
    }
    for o, spec, _ in pod_templates(r.objects):
        where = f"{o['kind']}/{o['metadata']['name']}"
        comp = r.component(o)
        if comp == "serve-test":
            continue
        vols = {x.get("name"): x for x in spec.get("volumes") or []}
        ws = vols.get("workspace", {}).get("persistentVolumeClaim", {})
        if ws.get("claimName") != claim:
            out.append(f"{where}: workspace claim {ws.get('claimName')!r}, values say {claim!r}")
        for c in spec.get("containers") or []:
            ms = {m.get("mountPath"): m for m in c.get("volumeMounts") or []}
            if (ms.get(mount) or {}).get("name") != "workspace":
                out.append(f"{where}/{c.get('name')}: the PVC is not mounted at {mount}")
            if c.get("workingDir", mount) != mount:
                out.append(f"{where}/{c.get('name')}: workingDir {c.get('workingDir')} is not {mount}")
            if (ms.get("/tmp") or {}).get("name") not in vols or "emptyDir" not in vols[ms["/tmp"]["name"]]:
                out.append(f"{where}/{c.get('name')}: no emptyDir at /tmp")
            for name, ev in (v["common"]["extraVolumes"] or {}).items():
                m = ms.get(ev["mountPath"])
                if not m or m.get("name") != name or bool(m.get("readOnly")) != bool(ev.get("readOnly")):
                    out.append(f"{where}/{c.get('name')}: extra volume {name} not mounted at {ev['mountPath']}")
                elif {k: x for k, x in vols.get(name, {}).items() if k != "name"} != ev["source"]:
                    out.append(f"{where}: extra volume {name} has another source than common.extraVolumes.{name}")
            res = c.get("resources") or {}
            lim, req = res.get("limits") or {}, res.get("requests") or {}
            try:
                if _mib(req["memory"]) > _mib(lim["memory"]) or _millicores(req["cpu"]) > _millicores(lim["cpu"]):
                    out.append(f"{where}/{c.get('name')}: requests above limits")
            except (KeyError, ValueError):
                out.append(f"{where}/{c.get('name')}: cpu/memory requests and limits missing or unreadable")
            shm_mount = ms.get("/dev/shm")
            want_shm = shm.get(comp, "") if o["kind"] != "Notebook" else v["notebook"]["shmSize"]
            if comp.startswith("merge") or o["kind"] == "Job" and comp == "workspace":
                want_shm = None
            if want_shm:
                ed = vols.get((shm_mount or {}).get("name"), {}).get("emptyDir") or {}
                if ed.get("medium") != "Memory" or ed.get("sizeLimit") != want_shm:
                    out.append(f"{where}: /dev/shm {ed} is not a Memory emptyDir of {want_shm}")
                elif "memory" in lim and 2 * _mib(want_shm) > _mib(lim["memory"]):
                    out.append(f"{where}: /dev/shm {want_shm} takes more than half the memory limit {lim['memory']}")
            elif shm_mount:
                out.append(f"{where}: /dev/shm mounted where no shmSize applies")
    for pvc in r.of("PersistentVolumeClaim"):
        if pvc["metadata"]["name"] != v["storage"]["name"] or v["storage"]["existingClaim"]:
            out.append(
                f"PVC {pvc['metadata']['name']} with storage.name={v['storage']['name']!r}, existingClaim={v['storage']['existingClaim']!r}"
            )
        if (pvc["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") != "keep":
            out.append(f"PVC {pvc['metadata']['name']} is not kept on uninstall")
    return out
