"""Reading rendered objects: flags of a command line, the ConfigMaps a pod mounts and the
config files in them, the objects and the workload of one stage."""

from __future__ import annotations

from chartkit.pipeline import parse_config, pod_spec

from .values import Render

CONFIG_PATH = "/etc/llama-factory"  # llama-factory.configPath
BATCH = ("Job", "DeepSpeedJob")  # kinds whose names carry a hash of what they run


def flags(args) -> dict:
    out = {}
    for a in args or []:
        if isinstance(a, str) and a.startswith("--"):
            k, eq, v = a[2:].partition("=")
            out[k] = v if eq else True
    return out


def configmaps(r: Render) -> dict[str, dict]:
    return {o["metadata"]["name"]: o.get("data") or {} for o in r.of("ConfigMap")}


def mounted_config(r: Render, spec: dict) -> dict:
    """Data of the ConfigMap a pod mounts as its `config` volume ({} if none)."""
    for v in spec.get("volumes") or []:
        if "configMap" in v and v.get("name") == "config":
            return configmaps(r).get(v["configMap"].get("name"), {})
    return {}


def config_file(r: Render, o: dict, key: str):
    spec = pod_spec(o)
    text = mounted_config(r, spec).get(key)
    if text is None:
        return None
    return parse_config(key, text)


def stage_objects(r: Render, stage: str) -> list[dict]:
    """The objects of one stage (by component label; eval and serve own their Jobs/Pods)."""
    comps = {"workspace": {"workspace"}, "serve": {"serve", "serve-test"}}.get(stage, {stage})
    return [o for o in r.objects if r.component(o) in comps]


def workload(r: Render, stage: str) -> dict | None:
    kinds = {"sft": "DeepSpeedJob", "dpo": "DeepSpeedJob", "merge-sft": "Job", "merge-dpo": "Job", "eval": "Job", "serve": "Deployment"}
    found = [o for o in stage_objects(r, stage) if o["kind"] == kinds.get(stage)]
    return found[0] if len(found) == 1 else None


def _gpus(c: dict, name: str) -> tuple[int, int]:
    res = c.get("resources") or {}
    return int((res.get("limits") or {}).get(name, 0)), int((res.get("requests") or {}).get(name, 0))
