"""What a rendered stage reads, writes and asks for, read back from its objects
(the LLaMA-Factory configs in ConfigMaps, the download plan, the lm_eval and
vLLM command lines), so that summaries and tests check the manifests
themselves rather than the values that produced them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .chart import load_yaml

GPU = "nvidia.com/gpu"


@dataclass
class StageIO:
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    gpus: int = 0  # GPUs of the stage's workload (all workers)
    objects: list[str] = field(default_factory=list)


def by_kind(objects, kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def config_data(objects, key: str) -> dict:
    """Parsed data key of the one ConfigMap that has it."""
    (cm,) = [o for o in by_kind(objects, "ConfigMap") if key in o.get("data", {})]
    return parse_config(key, cm["data"][key])


def parse_config(key: str, text: str):
    """A config file's text as its program reads it: JSON for a .json key, YAML otherwise."""
    return json.loads(text) if key.endswith(".json") else load_yaml(text)


def pod_templates(objects):
    """(object, pod spec, pod template metadata) of every pod the objects create: a
    DeepSpeedJob's workers, a Notebook's, Job's or Deployment's template, a bare Pod (its own
    metadata); other kinds create none. A spec or metadata the object lacks reads as {}.
    The harness's one pod-spec locator (scripts, tests, invariants and fuzzer use it)."""
    for o in objects:
        kind = o.get("kind")
        if kind == "DeepSpeedJob":
            t = o["spec"]["worker"]["template"]
        elif kind in ("Notebook", "Job", "Deployment"):
            t = o["spec"]["template"]
        elif kind == "Pod":
            t = o
        else:
            continue
        yield o, t.get("spec") or {}, t.get("metadata") or {}


def pod_spec(obj: dict) -> dict:
    """The pod spec of one object that creates pods (pod_templates)."""
    for _, spec, _ in pod_templates([obj]):
        return spec
    raise ValueError(f"{obj.get('kind')} creates no pods")


def container_gpus(spec: dict) -> int:
    return sum(int(c.get("resources", {}).get("limits", {}).get(GPU, 0)) for c in spec["containers"])


def flags(args: list[str]) -> dict[str, str]:
    out = {}
    for a in args:
        if a.startswith("--"):
            k, _, v = a[2:].partition("=")
            out[k] = v if _ else True
    return out


def stage_io(stage: str, objects) -> StageIO:
    io = StageIO(objects=sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects))
    if stage == "workspace":
        plan = config_data(objects, "download.json")
        io.writes.append(plan["model"]["target"])
        io.gpus = sum(container_gpus(pod_spec(o)) for o in by_kind(objects, "Notebook"))
    elif stage in ("sft", "dpo"):
        cfg = config_data(objects, "train.yaml")
        io.reads.append(cfg["model_name_or_path"])
        io.writes.append(cfg["output_dir"])
        (dj,) = by_kind(objects, "DeepSpeedJob")
        io.gpus = container_gpus(pod_spec(dj)) * dj["spec"]["worker"].get("replicas", 1)
    elif stage.startswith("merge-"):
        cfg = config_data(objects, "merge.yaml")
        io.reads += [cfg["model_name_or_path"], cfg["adapter_name_or_path"]]
        io.writes.append(cfg["export_dir"])
        (job,) = by_kind(objects, "Job")
        io.gpus = container_gpus(pod_spec(job))
    elif stage == "eval":
        (job,) = by_kind(objects, "Job")
        f = flags(pod_spec(job)["containers"][0]["command"])
        io.reads.append(dict(kv.split("=", 1) for kv in f["model_args"].split(","))["pretrained"])
        io.writes.append(f["output_path"])
        io.gpus = container_gpus(pod_spec(job))
    elif stage == "serve":
        (dep,) = by_kind(objects, "Deployment")
        c = pod_spec(dep)["containers"][0]
        io.reads.append(c["args"][0])
        f = flags(c["args"][1:])
        if "lora-modules" in f:
            io.reads.append(f["lora-modules"].split("=", 1)[1])
        io.gpus = container_gpus(pod_spec(dep)) * dep["spec"]["replicas"]
    return io
