"""The path plan (the contract of llama-factory.paths, from the values alone) and the invariants
over it: the path chain of a release's stages, and the order inside a release (who waits for
whom)."""

from __future__ import annotations

import json

from chartkit.chart import STAGES
from chartkit.pipeline import pod_spec, pod_templates

from .reading import config_file, flags, stage_objects, workload
from .values import Render


def plan(v: dict) -> dict[str, str]:
    m, method, run = v["model"]["name"], v["training"]["method"], v.get("run") or ""
    saves = f"saves/{m}/{method}" + (f"/{run}" if run else "")  # a named run gets its own directories
    sft, dpo = f"{saves}/sft", f"{saves}/dpo"
    full = method == "full"
    # Merged models of two methods (or runs) never share a directory.
    tag = ("" if method == "lora" else f"-{method}") + (f"-{run}" if run else "")
    return {
        "base": f"models/{m}",
        "sft": sft,
        "sftModel": sft if full else f"models/{m}{tag}-sft",
        "dpo": dpo,
        "dpoModel": dpo if full else f"models/{m}{tag}-dpo",
        "data": "data",
        "hfHome": ".cache/huggingface",
        "eval": f"evals/{m}{tag}",
    }


def absolute(v: dict, rel: str) -> str:
    return f"{v['storage']['mountPath']}/{rel}"


def model_source(v: dict, choice: str, lora: bool) -> tuple[str, str | None]:
    p = plan(v)
    if lora:
        return (p["base"], p["sft"]) if choice == "sft" else (p["sftModel"], p["dpo"])
    return (p["base"] if choice == "base" else p[f"{choice}Model"]), None


def expected_io(v: dict, stage: str) -> tuple[list[str], list[str]]:
    """(reads, writes) of a stage, absolute paths, from the values alone."""
    p, a = plan(v), (lambda rel: absolute(v, rel))
    if stage == "workspace":
        return [], [a(p["base"])]
    if stage == "sft":
        return [a(p["base"])], [a(p["sft"])]
    if stage == "dpo":
        return [a(p["sftModel"])], [a(p["dpo"])]
    if stage == "merge-sft":
        return [a(p["base"]), a(p["sft"])], [a(p["sftModel"])]
    if stage == "merge-dpo":
        return [a(p["sftModel"]), a(p["dpo"])], [a(p["dpoModel"])]
    if stage == "eval":
        return [a(model_source(v, v["eval"]["model"], False)[0])], [a(f"{p['eval']}/{v['eval']['model']}")]
    if stage == "serve":
        model, adapter = model_source(v, v["serving"]["model"], bool(v["serving"]["lora"]))
        return [a(model)] + ([a(adapter)] if adapter else []), []
    raise ValueError(stage)


def rendered_io(r: Render, stage: str) -> tuple[list[str], list[str]] | None:
    """(reads, writes) of a stage as its objects say (the configs in its
    ConfigMaps, the download plan, the lm_eval and vLLM command lines)."""
    if stage == "workspace":
        dl = [o for o in stage_objects(r, stage) if o["kind"] == "ConfigMap" and "download.json" in o.get("data", {})]
        if not dl:
            return None
        return [], [json.loads(dl[0]["data"]["download.json"])["model"]["target"]]
    o = workload(r, stage)
    if o is None:
        return None
    if stage in ("sft", "dpo"):
        cfg = config_file(r, o, "train.yaml") or {}
        return [cfg.get("model_name_or_path")], [cfg.get("output_dir")]
    if stage.startswith("merge-"):
        cfg = config_file(r, o, "merge.yaml") or {}
        return [cfg.get("model_name_or_path"), cfg.get("adapter_name_or_path")], [cfg.get("export_dir")]
    c = pod_spec(o)["containers"][0]
    if stage == "eval":
        f = flags(c.get("command"))
        margs = dict(kv.split("=", 1) for kv in str(f.get("model_args", "")).split(",") if "=" in kv)
        return [margs.get("pretrained")], [f.get("output_path")]
    args = c.get("args") or []
    f = flags(args[1:])
    reads = [args[0] if args else None]
    if "lora-modules" in f:
        reads.append(str(f["lora-modules"]).split("=", 1)[-1])
    return reads, []


def stages_of(r: Render) -> list[str]:
    wanted = r.values.get("stages") or []
    return [s for s in STAGES if s in wanted]


def path_chain(r: Render) -> list[str]:
    """Every stage reads exactly what the path plan says its input stage wrote,
    and writes where the plan says, under the PVC's mount path; the outputs of
    different stages never share a directory; every container's Hugging Face
    cache (HF_HOME, where the download stage put the datasets) is the plan's."""
    out, v = [], r.values
    hf_home = absolute(v, plan(v)["hfHome"])
    for o, spec, _ in pod_templates(r.objects):
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for e in c.get("env") or []:
                if e.get("name") == "HF_HOME" and e.get("value") != hf_home:
                    where = f"{o['kind']} {o['metadata']['name']}, container {c['name']}"
                    out.append(f"{where}: HF_HOME={e.get('value')!r}, the path plan says {hf_home}")
    writes = {}
    for stage in stages_of(r):
        if stage == "workspace" and not v["download"]["enabled"]:
            continue
        got = rendered_io(r, stage)
        if got is None:
            out.append(f"{stage}: no workload rendered")
            continue
        want = expected_io(v, stage)
        if list(got[0]) != want[0]:
            out.append(f"{stage} reads {got[0]}, the path plan says {want[0]}")
        if list(got[1]) != want[1]:
            out.append(f"{stage} writes {got[1]}, the path plan says {want[1]}")
        for w in got[1]:
            writes[stage] = w
    mount = v["storage"]["mountPath"].rstrip("/") + "/"
    ws = list(writes.items())
    for i, (s1, w1) in enumerate(ws):
        if not str(w1).startswith(mount):
            out.append(f"{s1} writes {w1}, outside the PVC at {mount}")
        for s2, w2 in ws[i + 1 :]:
            if w1 == w2 and not (v["training"]["method"] == "full" and {s1, s2} <= {"sft", "dpo"}):
                out.append(f"{s1} and {s2} both write {w1}")
            elif str(w1).startswith(str(w2) + "/") or str(w2).startswith(str(w1) + "/"):
                out.append(f"{s1} writes {w1} and {s2} writes {w2}: one inside the other")
    return out


def pipeline_order(r: Render) -> list[str]:
    """Inside one release, a stage waits (init container `wait-for-inputs`, files/launch.py
    wait) for exactly the other stages of the release that write what it reads, each named
    with the fingerprint its producer's pod carries and its name ends in; producers record
    their outcome (the fingerprint through the downward API); a Job that waits fails at once
    when the wait cannot succeed, and its deadline covers the wait."""
    out, v = [], r.values
    io = {}
    for stage in stages_of(r):
        got = rendered_io(r, stage)
        if got is not None:
            io[stage] = ([x for x in got[0] if x], [x for x in got[1] if x])
    fps, waits = {}, {}
    for o, spec, meta in pod_templates(r.objects):
        comp = r.component(o)
        fp = ((meta or {}).get("annotations") or {}).get("llama-factory/fingerprint")
        if fp:
            fps[comp] = fp
            if not o["metadata"]["name"].endswith("-" + fp):
                out.append(f"{o['kind']}/{o['metadata']['name']}: fingerprint {fp} is not the hash in its name")
            env = {e["name"]: e for e in spec["containers"][0].get("env") or []}
            ref = ((env.get("LLAMA_FACTORY_FINGERPRINT") or {}).get("valueFrom") or {}).get("fieldRef", {})
            if ref.get("fieldPath") != "metadata.annotations['llama-factory/fingerprint']":
                out.append(f"{o['kind']}/{o['metadata']['name']}: its launcher does not get the fingerprint")
        for c in spec.get("initContainers") or []:
            if c.get("name") == "wait-for-inputs":
                cmd = c.get("command") or []
                waits[comp] = {a for a in cmd if "=" in a and "@" in a and not a.startswith("--")}
                if f"--timeout={v['pipeline']['waitTimeoutSeconds']}" not in cmd:
                    out.append(f"{comp}: wait-for-inputs does not use pipeline.waitTimeoutSeconds")
                if o["kind"] == "Job":
                    rules = (o["spec"].get("podFailurePolicy") or {}).get("rules") or []
                    if not any((rule.get("onExitCodes") or {}).get("containerName") == "wait-for-inputs" for rule in rules):
                        out.append(f"{comp}: a Job that waits has no podFailurePolicy for its wait")
    for consumer, (reads, _) in io.items():
        want = {
            f"{producer}={path}@{fps.get(producer)}"
            for path in reads
            for producer, (_, writes) in io.items()
            if producer != consumer and path in writes
        }
        got = waits.get(consumer, set())
        if got != want:
            out.append(f"{consumer} waits for {sorted(got)}; the stages of its release that write what it reads: {sorted(want)}")
    return out
