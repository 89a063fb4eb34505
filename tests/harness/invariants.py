"""The chart's invariants: plain functions over the objects of one render and
the values that produced them (or over a pair of renders), each returning a
list of problems ([] when it holds). Three drivers run the same functions:

  * tests/test_invariants.py         every preset x stage, and the pairs of
                                     presets x methods x stages x releases;
  * tests/test_values_surface.py     every leaf of values.yaml changed;
  * tests/test_fuzz_values.py        every schema-valid Hypothesis example
                                     (harness.fuzz.check).

Each invariant states what a reviewer would check by hand, computed from the
values independently of the chart's helpers (the path plan below is the
contract of llama-factory.paths, written out again), so that a template that
drifts from the values is caught whatever the values are.

    problems = invariants.check(Render(objects, values))   # {name: [message]}
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from chartkit.chart import ROOT, STAGES
from chartkit.pipeline import pod_spec, pod_templates

DEFAULTS_FILE = ROOT / "values.yaml"
ROUTES = ROOT / "tests" / "peer" / "vllm_routes.json"
CONFIG_PATH = "/etc/llama-factory"  # llama-factory.configPath
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM 0.11.0's LoRAConfig.max_lora_rank choices
BATCH = ("Job", "DeepSpeedJob")  # kinds whose names carry a hash of what they run

# ---------------------------------------------------------------------------
# The values a render was made from (Helm's merge, for the harness's releases).


def merge_maps(a: dict, b: dict) -> dict:
    """Helm's merge of values files: later wins, maps merge."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge_maps(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def coalesce(user: dict, chart: dict) -> dict:
    """Helm's coalesce of user values over chart defaults: a user null deletes a default key."""
    for key, val in chart.items():
        if key in user:
            if user[key] is None:
                del user[key]
            elif isinstance(user[key], dict) and isinstance(val, dict):
                coalesce(user[key], val)
        else:
            user[key] = copy.deepcopy(val)
    return user


def _split_top(text: str, sep: str = ",") -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def _set_value(text: str):
    """What Helm's strvals makes of a --set value: {a,b} lists, bools, null, int64; else a string."""
    if text.startswith("{") and text.endswith("}"):
        return [_set_value(t) for t in _split_top(text[1:-1])] if text[1:-1] else []
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", text):
        return int(text)
    return text


def _put(d: dict, path: str, value) -> None:
    keys = re.split(r"(?<!\\)\.", path)
    for k in keys[:-1]:
        k = k.replace("\\.", ".")
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[keys[-1].replace("\\.", ".")] = value


def values_of(files=(), sets=(), set_json=()) -> dict:
    """The values Helm renders with: chart defaults, values files, --set-json, --set."""
    user: dict = {}
    for f in files:
        user = merge_maps(user, yaml.safe_load((ROOT / f).read_text()) or {})
    for s in set_json:
        k, _, v = s.partition("=")
        _put(user, k, json.loads(v))
    for s in sets:
        for part in _split_top(s):
            k, _, v = part.partition("=")
            _put(user, k, _set_value(v))
    return coalesce(user, yaml.safe_load(DEFAULTS_FILE.read_text()))


@dataclass(frozen=True)
class Render:
    objects: tuple
    values: dict = field(hash=False, compare=False)
    release: str = "llama31"
    namespace: str = "default"

    def of(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == kind]

    def component(self, o: dict) -> str:
        return ((o.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", "")


# ---------------------------------------------------------------------------
# Reading rendered objects.


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
    return json.loads(text) if key.endswith(".json") else yaml.safe_load(text)


def stage_objects(r: Render, stage: str) -> list[dict]:
    """The objects of one stage (by component label; eval and serve own their Jobs/Pods)."""
    comps = {"workspace": {"workspace"}, "serve": {"serve", "serve-test"}}.get(stage, {stage})
    return [o for o in r.objects if r.component(o) in comps]


def workload(r: Render, stage: str) -> dict | None:
    kinds = {"sft": "DeepSpeedJob", "dpo": "DeepSpeedJob", "merge-sft": "Job", "merge-dpo": "Job",
             "eval": "Job", "serve": "Deployment"}
    found = [o for o in stage_objects(r, stage) if o["kind"] == kinds.get(stage)]
    return found[0] if len(found) == 1 else None


# ---------------------------------------------------------------------------
# The path plan: the contract of llama-factory.paths, from the values alone.


def plan(v: dict) -> dict[str, str]:
    m, method, run = v["model"]["name"], v["training"]["method"], v.get("run") or ""
    saves = f"saves/{m}/{method}" + (f"/{run}" if run else "")  # a named run gets its own directories
    sft, dpo = f"{saves}/sft", f"{saves}/dpo"
    full = method == "full"
    # Merged models of two methods (or runs) never share a directory.
    tag = ("" if method == "lora" else f"-{method}") + (f"-{run}" if run else "")
    return {"base": f"models/{m}", "sft": sft, "sftModel": sft if full else f"models/{m}{tag}-sft",
            "dpo": dpo, "dpoModel": dpo if full else f"models/{m}{tag}-dpo", "data": "data",
            "hfHome": ".cache/huggingface", "eval": f"evals/{m}{tag}"}


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


# ---------------------------------------------------------------------------
# Invariants over one render.


def path_chain(r: Render) -> list[str]:
    """Every stage reads exactly what the path plan says its input stage wrote,
    and writes where the plan says, under the PVC's mount path; the outputs of
    different stages never share a directory."""
    out, v = [], r.values
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
        for s2, w2 in ws[i + 1:]:
            if w1 == w2 and not (v["training"]["method"] == "full" and {s1, s2} <= {"sft", "dpo"}):
                out.append(f"{s1} and {s2} both write {w1}")
            elif str(w1).startswith(str(w2) + "/") or str(w2).startswith(str(w1) + "/"):
                out.append(f"{s1} writes {w1} and {s2} writes {w2}: one inside the other")
    return out


def _gpus(c: dict, name: str) -> tuple[int, int]:
    res = c.get("resources") or {}
    return int((res.get("limits") or {}).get(name, 0)), int((res.get("requests") or {}).get(name, 0))


def gpu_arithmetic(r: Render) -> list[str]:
    """GPU limits follow the one value that sizes each workload: slots per worker
    x workers is the world size, tensor parallel is the GPU limit and vLLM's
    --tensor-parallel-size, the served LoRA rank fits --max-lora-rank; requests
    of an extended resource equal its limit; DeepSpeed's batch keys are left
    to the Trainer or agree with LLaMA-Factory's."""
    out, v = [], r.values
    gpu = v["common"]["gpu"]["resourceName"]

    def want(stage_n: int) -> int:
        return stage_n if gpu else 0

    def check(where: str, c: dict, n: int):
        lim, req = _gpus(c, gpu) if gpu else (0, 0)
        if (lim, req) != (want(n), want(n)):
            out.append(f"{where}: {gpu} limit/request {lim}/{req}, values say {want(n)}")
        for kind in ("limits", "requests"):
            for k in ((c.get("resources") or {}).get(kind) or {}):
                if "/" in k and k != gpu and k != v["training"]["rdma"]["resourceName"]:
                    out.append(f"{where}: unexpected extended resource {k}")

    t = v["training"]
    for dj in r.of("DeepSpeedJob"):
        cfg = dj["spec"]["config"]
        spec = pod_spec(dj)
        (c,) = spec["containers"]
        where = f"DeepSpeedJob/{dj['metadata']['name']}"
        if cfg.get("slotsPerWorker") != t["gpusPerWorker"]:
            out.append(f"{where}: slotsPerWorker {cfg.get('slotsPerWorker')} != training.gpusPerWorker {t['gpusPerWorker']}")
        if dj["spec"]["worker"].get("replicas", 1) != t["workers"]:
            out.append(f"{where}: replicas {dj['spec']['worker'].get('replicas')} != training.workers {t['workers']}")
        check(where, c, t["gpusPerWorker"])
        if gpu and _gpus(c, gpu)[0] != cfg.get("slotsPerWorker"):
            out.append(f"{where}: GPU limit {_gpus(c, gpu)[0]} != slotsPerWorker {cfg.get('slotsPerWorker')} (one process per GPU)")
        rdma = t["rdma"]
        has = _gpus(c, rdma["resourceName"])
        if has != ((1, 1) if rdma["enabled"] else (0, 0)):
            out.append(f"{where}: {rdma['resourceName']} limit/request {has} with training.rdma.enabled={rdma['enabled']}")
        train = config_file(r, dj, "train.yaml") or {}
        ds = config_file(r, dj, "ds_config.json") or {}
        world = cfg.get("slotsPerWorker", 0) * dj["spec"]["worker"].get("replicas", 1)
        micro, accum = train.get("per_device_train_batch_size"), train.get("gradient_accumulation_steps")
        for key, w in (("train_micro_batch_size_per_gpu", micro), ("gradient_accumulation_steps", accum),
                       ("train_batch_size", (micro or 0) * (accum or 0) * world)):
            if ds.get(key, "auto") not in ("auto", w):
                out.append(f"{where}: DeepSpeed {key}={ds.get(key)} but LLaMA-Factory's batch gives {w}")
        zero = (ds.get("zero_optimization") or {}).get("stage")
        if zero != t["deepspeed"]["zeroStage"] and "zero_optimization" not in t["deepspeed"]["extraConfig"]:
            out.append(f"{where}: ZeRO stage {zero} != training.deepspeed.zeroStage {t['deepspeed']['zeroStage']}")
    for o in r.of("Job"):
        comp = r.component(o)
        (c,) = pod_spec(o)["containers"]
        n = {"merge-sft": v["merge"]["gpus"], "merge-dpo": v["merge"]["gpus"], "eval": v["eval"]["gpus"]}.get(comp, 0)
        check(f"Job/{o['metadata']['name']}", c, n)
        if comp == "eval":
            par = "parallelize=True" in str(flags(c.get("command")).get("model_args", ""))
            if par != (v["eval"]["gpus"] > 1):
                out.append(f"eval: parallelize={par} with eval.gpus={v['eval']['gpus']}")
    for o in r.of("Notebook"):
        check(f"Notebook/{o['metadata']['name']}", pod_spec(o)["containers"][0], v["notebook"]["gpus"])
    s = v["serving"]
    for d in r.of("Deployment"):
        (c,) = pod_spec(d)["containers"]
        where = f"Deployment/{d['metadata']['name']}"
        check(where, c, s["tensorParallelSize"])
        if d["spec"].get("replicas") != s["replicas"]:
            out.append(f"{where}: replicas {d['spec'].get('replicas')} != serving.replicas {s['replicas']}")
        f = flags((c.get("args") or [])[1:])
        if str(f.get("tensor-parallel-size")) != str(s["tensorParallelSize"]):
            out.append(f"{where}: --tensor-parallel-size={f.get('tensor-parallel-size')} "
                       f"but serving.tensorParallelSize={s['tensorParallelSize']}")
        if v["model"]["numKeyValueHeads"] % s["tensorParallelSize"]:
            out.append(f"{where}: tensor parallel {s['tensorParallelSize']} does not divide {v['model']['numKeyValueHeads']} KV heads")
        if s["lora"]:
            rank = v["training"]["lora"]["rank"]
            mlr = int(f.get("max-lora-rank", 0))
            if mlr < rank or mlr not in LORA_RANKS:
                out.append(f"{where}: --max-lora-rank={mlr} cannot serve the trained rank {rank} (vLLM allows {LORA_RANKS})")
            if f.get("enable-lora") is not True:
                out.append(f"{where}: serving.lora without --enable-lora")
        elif "lora-modules" in f or "enable-lora" in f:
            out.append(f"{where}: LoRA flags without serving.lora")
    return out


def launcher_command(r: Render) -> list[str]:
    """The DeepSpeedJob's launcher runs `deepspeed --hostfile … --no_local_rank
    [--no_ssh_check --master_addr=127.0.0.1 with one worker]
    <config>/launch.py train <config>/train.yaml` (the chart's launcher step,
    which runs llamafactory.launcher), both files are in the ConfigMap the
    worker mounts at <config>, and the hostfile has one line per worker with
    one slot per GPU."""
    from chartkit import launcher

    out, t = [], r.values["training"]
    for dj in r.of("DeepSpeedJob"):
        where = f"DeepSpeedJob/{dj['metadata']['name']}"
        cmd = launcher.command(dj, "/t9k/hostfile", python="python")
        want = ["python", "-m", "deepspeed.launcher.runner", "--hostfile=/t9k/hostfile", "--no_local_rank"]
        if t["workers"] == 1:
            want += ["--no_ssh_check", "--master_addr=127.0.0.1"]
        want += [f"{CONFIG_PATH}/launch.py", "train", f"{CONFIG_PATH}/train.yaml"]
        if cmd != want:
            out.append(f"{where}: launcher runs {cmd}, expected {want}")
        spec = pod_spec(dj)
        (c,) = spec["containers"]
        if c.get("name") != "worker":
            out.append(f"{where}: the controller runs the container named 'worker', not {c.get('name')!r}")
        mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
        for key in ("train.yaml", "launch.py"):
            if mounts.get(CONFIG_PATH) != "config" or key not in mounted_config(r, spec):
                out.append(f"{where}: {CONFIG_PATH}/{key} is not in the ConfigMap mounted there")
        hf = launcher.hostfile(dj).splitlines()
        if len(hf) != t["workers"] or any(not ln.endswith(f"slots={t['gpusPerWorker']}") for ln in hf):
            out.append(f"{where}: hostfile {hf} for {t['workers']} worker(s) x {t['gpusPerWorker']} GPU(s)")
    return out


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
                refs = {p[len(root):] for p in _CM_REF.findall(text + json.dumps(list(data.values())))
                        if p.startswith(root)}
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
    for unit, f in (("Ti", 1024 ** 2), ("Gi", 1024), ("Mi", 1)):
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
    shm = {"sft": v["training"]["shmSize"], "dpo": v["training"]["shmSize"], "eval": v["eval"]["shmSize"],
           "serve": v["serving"]["shmSize"], "workspace": None}
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
            out.append(f"PVC {pvc['metadata']['name']} with storage.name={v['storage']['name']!r}, "
                       f"existingClaim={v['storage']['existingClaim']!r}")
        if (pvc["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") != "keep":
            out.append(f"PVC {pvc['metadata']['name']} is not kept on uninstall")
    return out


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
    return (isinstance(key, str) and 0 < len(key) <= 253 and bool(CONFIGMAP_KEY.fullmatch(key))
            and key not in (".", "..") and not key.startswith(".."))


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
        if meta is not o:
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
                if n is not None and (len(n) > 15 or not IANA_SVC_NAME.fullmatch(n) or "--" in n
                                      or not re.search("[a-z]", n)):
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
        selected = [(o, spec) for o, spec, meta in pods if o.get("kind") != "Pod" and sel
                    and all((meta.get("labels") or {}).get(k) == val for k, val in sel.items())]
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


SECRET_NAME = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)")
SECRET_VALUE = re.compile(r"(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}"
                          r"|xox[abprs]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----"
                          r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,})")


def secret_flow(r: Render) -> list[str]:
    """Secrets only by reference: every environment variable with a secret's
    name comes from a secretKeyRef (the Hugging Face token from
    common.huggingface.existingSecret, the vLLM key from
    serving.apiKey.existingSecret), and no secret-looking string appears in a
    ConfigMap, an env value, a command line, a label or an annotation."""
    out, v = [], r.values
    refs = {"HF_TOKEN": (v["common"]["huggingface"]["existingSecret"], v["common"]["huggingface"]["tokenKey"]),
            "VLLM_API_KEY": (v["serving"]["apiKey"]["existingSecret"], v["serving"]["apiKey"]["key"])}
    exposed = []
    for o in r.objects:
        meta = o.get("metadata") or {}
        exposed.append((f"{o.get('kind')}/{meta.get('name')} metadata", [meta.get("labels"), meta.get("annotations")]))
        if o.get("kind") == "ConfigMap":
            exposed.append((f"ConfigMap/{meta.get('name')}", o.get("data")))
    for o, spec, meta in pod_templates(r.objects):
        where = f"{o['kind']}/{o['metadata']['name']}"
        exposed.append((f"{where} pod metadata", [meta.get("labels"), meta.get("annotations")]))
        if o["kind"] == "DeepSpeedJob":
            exposed.append((f"{where} config", o["spec"].get("config")))
        inits = spec.get("initContainers") or []
        for c in inits + (spec.get("containers") or []):
            cw = f"{where}/{c.get('name')}"
            exposed.append((f"{cw} command line", [c.get("command"), c.get("args")]))
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                exposed.append((f"{cw} {probe}", c.get(probe)))
            for e in c.get("env") or []:
                name = str(e.get("name"))
                if "value" in e:
                    exposed.append((f"{cw} env {name}", e["value"]))
                if SECRET_NAME.search(name):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if "value" in e or not ref:
                        out.append(f"{cw}: {name} is not set from a secretKeyRef")
                    elif name in refs and (ref.get("name"), ref.get("key")) != refs[name]:
                        out.append(f"{cw}: {name} from {ref}, values name {refs[name]}")
            names = {e.get("name") for e in c.get("env") or []}
            for name, (secret, _) in refs.items():
                # The token goes to every main container (the helm-test Pod's client needs none), not
                # to the init container that waits for a stage's inputs on the PVC.
                if (secret and name == "HF_TOKEN" and r.component(o) != "serve-test" and c not in inits
                        and name not in names):
                    out.append(f"{cw}: common.huggingface.existingSecret is set but {name} is not passed")
    for where, thing in exposed:
        m = SECRET_VALUE.search(json.dumps(thing))
        if m:
            out.append(f"{where}: a secret-looking value {m.group(0)[:12]}… is rendered in clear")
    return out


@cache
def route_table(path: Path = ROUTES) -> dict:
    return json.loads(Path(path).read_text())


def _route_ok(table: dict, method: str, path: str, env: set, args: set) -> str | None:
    """None when `method path` is served by vLLM with this container's env/flags; else why not."""
    for rt in table["routes"]:
        if rt["path"] == path or (rt.get("prefix") and (path == rt["path"] or path.startswith(rt["path"] + "/"))):
            if method not in rt["methods"]:
                continue
            cond = rt.get("condition")
            if cond and cond.get("env") and cond["env"] not in env:
                return f"{method} {path} exists only with {cond['env']} set"
            if cond and cond.get("flag") and cond["flag"] not in args:
                return f"{method} {path} exists only with --{cond['flag']}"
            return None
    return f"vLLM {table['vllm_version']} serves no {method} {path}"


_URL = re.compile(r"http://([^/:\"'\s]+):(\d+)(/[\w/{}.$-]*)")


def vllm_routes(r: Render) -> list[str]:
    """Every HTTP request the chart makes of vLLM - the startup, readiness and
    liveness probes and the helm test's calls - is a route of the pinned vLLM
    version (tests/peer/vllm_routes.json, read from vLLM's own source), on the
    port vLLM listens on (--port, the container port `http`, the Service's
    targetPort), sent with the API key when vLLM's auth middleware guards the
    route and a key is configured."""
    out, v = [], r.values
    table = route_table()
    auth_prefix = table["auth"]["prefix"]
    keyed = bool(v["serving"]["apiKey"]["existingSecret"])
    svc_port = {}
    for svc in r.of("Service"):
        for p in svc["spec"].get("ports") or []:
            svc_port[svc["metadata"]["name"]] = (p.get("port"), p.get("targetPort"))
    for d in r.of("Deployment"):
        (c,) = pod_spec(d)["containers"]
        where = f"Deployment/{d['metadata']['name']}"
        f = flags((c.get("args") or [])[1:])
        port = int(f.get("port", 8000)) if str(f.get("port", "8000")).isdigit() else f.get("port")
        env = {e.get("name") for e in c.get("env") or []}
        args = set(f)
        cports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        if cports.get("http") != port:
            out.append(f"{where}: vLLM listens on --port={port}, the container port http is {cports.get('http')}")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            pr = c.get(probe)
            if not pr:
                out.append(f"{where}: no {probe}")
                continue
            if "httpGet" in pr:
                path = pr["httpGet"].get("path", "/")
                why = _route_ok(table, "GET", path, env, args)
                if why:
                    out.append(f"{where} {probe}: {why}")
                if keyed and path.startswith(auth_prefix) and not pr["httpGet"].get("httpHeaders"):
                    out.append(f"{where} {probe}: GET {path} needs the API key (vLLM guards {auth_prefix}*)")
                pp = pr["httpGet"].get("port")
                if cports.get(pp, pp) != port:
                    out.append(f"{where} {probe}: port {pp} is not vLLM's {port}")
            elif "exec" in pr:
                text = " ".join(pr["exec"].get("command") or [])
                urls = _URL.findall(text)
                if not urls:
                    out.append(f"{where} {probe}: an exec probe that calls no URL")
                for host, p, path in urls:
                    why = _route_ok(table, "GET", path, env, args)
                    if why:
                        out.append(f"{where} {probe}: {why}")
                    if int(p) != port or host not in ("127.0.0.1", "localhost"):
                        out.append(f"{where} {probe}: calls {host}:{p}, vLLM listens on 127.0.0.1:{port}")
                    if keyed and path.startswith(auth_prefix) and "VLLM_API_KEY" not in text:
                        out.append(f"{where} {probe}: {path} needs the API key")
        if probe_budget := c.get("startupProbe"):
            s = v["serving"]["startupProbe"]
            if (probe_budget.get("periodSeconds"), probe_budget.get("failureThreshold")) != (s["periodSeconds"], s["failureThreshold"]):
                out.append(f"{where}: startup budget is not serving.startupProbe")
        for svc, (sp, tp) in svc_port.items():
            if sp != v["serving"]["service"]["port"]:
                out.append(f"Service/{svc}: port {sp}, serving.service.port is {v['serving']['service']['port']}")
            if cports.get(tp, tp) != port:
                out.append(f"Service/{svc}: targetPort {tp} is not vLLM's port {port}")
    for pod in r.of("Pod"):
        for c in pod["spec"]["containers"]:
            script = "\n".join(str(a) for a in (c.get("command") or []) + (c.get("args") or [])).replace("\\\n", " ")
            env = {}
            for m in re.finditer(r'^\s*(\w+)="([^"]*)"', script, re.M):
                env[m.group(1)] = m.group(2)
            expanded = re.sub(r"\$\{?(\w+)\}?", lambda m, env=env: env.get(m.group(1), m.group(0)), script)
            calls = [ln for ln in expanded.splitlines() if re.search(r"\bcurl\b", ln)]
            if not calls:
                out.append(f"Pod/{pod['metadata']['name']}: the helm test calls nothing")
            for ln in calls:
                method = "POST" if re.search(r"\s-d\s|--data", ln) else "GET"
                for host, p, path in _URL.findall(ln):
                    if host not in svc_port:
                        out.append(f"helm test calls {host}, not the Service {sorted(svc_port)}")
                    elif int(p) != svc_port[host][0]:
                        out.append(f"helm test calls port {p}, the Service listens on {svc_port[host][0]}")
                    dep = r.of("Deployment")
                    denv = {e.get("name") for d in dep for e in pod_spec(d)["containers"][0].get("env") or []}
                    dargs = {k for d in dep for k in flags(pod_spec(d)["containers"][0].get("args", [])[1:])}
                    why = _route_ok(table, method, path, denv, dargs)
                    if why:
                        out.append(f"helm test: {why}")
                    if keyed and path.startswith(auth_prefix) and "-H @/tmp/headers" not in ln and "Authorization" not in ln:
                        out.append(f"helm test: {method} {path} needs the API key")
            if keyed and not any(e.get("name") == "VLLM_API_KEY" for e in c.get("env") or []):
                out.append("helm test: serving.apiKey is set but the test pod has no VLLM_API_KEY")
    return out


def served_model(r: Render) -> list[str]:
    """Clients (and the helm test) ask for the name vLLM serves: --served-model-name,
    or with LoRA the adapter's name in --lora-modules; serving.servedModelName
    when set, else the served directory's name."""
    out, v = [], r.values
    s = v["serving"]
    model, adapter = model_source(v, s["model"], bool(s["lora"]))
    merged = model_source(v, s["model"], False)[0]
    want = s["servedModelName"] or merged.rsplit("/", 1)[-1]
    for d in r.of("Deployment"):
        f = flags(pod_spec(d)["containers"][0].get("args", [])[1:])
        names = [str(f.get("lora-modules", "")).split("=", 1)[0]] if s["lora"] else [f.get("served-model-name")]
        if "served-model-name" in s["extraArgs"] or "lora-modules" in s["extraArgs"]:
            continue
        if want not in names:
            out.append(f"Deployment: serves {names}, clients ask for {want!r}")
        for pod in r.of("Pod"):
            script = json.dumps(pod["spec"]["containers"][0].get("args"))
            if f'\\"id\\":\\"{want}\\"' not in script and f'"id":"{want}"' not in script:
                out.append(f"helm test does not check for model {want!r}")
    return out


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
        for k, val in (("app.kubernetes.io/instance", r.release), ("app.kubernetes.io/name", want_name),
                       ("app.kubernetes.io/part-of", "llama-factory"), ("app.kubernetes.io/managed-by", "Helm")):
            if labels.get(k) != val:
                out.append(f"{where}: label {k}={labels.get(k)!r}, expected {val!r}")
        if not labels.get("app.kubernetes.io/component"):
            out.append(f"{where}: no component label")
    for o, _spec, meta in pod_templates(r.objects):
        if meta is o:
            continue
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


# ---------------------------------------------------------------------------
# Placement: where each pod runs, from common settings, GPU settings and its stage's.

BLOCKS = {"workspace": "download", "sft": "sft", "dpo": "dpo", "merge-sft": "merge", "merge-dpo": "merge",
          "eval": "eval", "serve": "serving", "serve-test": None}
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
        want_sel = {**(c.get("nodeSelector") or {}), **((c["gpu"].get("nodeSelector") or {}) if gpus else {}),
                    **(sched.get("nodeSelector") or {})}
        if (spec.get("nodeSelector") or {}) != want_sel:
            out.append(f"{where}: nodeSelector {spec.get('nodeSelector')}, expected {want_sel} "
                       f"({'a GPU pod' if gpus else 'no GPUs'}, stage {block})")
        want_tol = (c.get("tolerations") or []) + ((c["gpu"].get("tolerations") or []) if gpus else []) + (
            sched.get("tolerations") or [])
        if (spec.get("tolerations") or []) != want_tol:
            out.append(f"{where}: tolerations {spec.get('tolerations')}, expected {want_tol}")
        for key in ("affinity", "priorityClassName", "runtimeClassName", "serviceAccountName"):
            want = stage_setting(v, block, key) or None
            if spec.get(key) != want:
                out.append(f"{where}: {key} {spec.get(key)!r}, expected {want!r} (stage {block})")
        queue = stage_setting(v, block, "queue") or None
        if o["kind"] in ("DeepSpeedJob", "Notebook"):
            t9k = ((o["spec"].get("scheduler") or {}).get("t9kScheduler") or {})
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
        want = {f"{producer}={path}@{fps.get(producer)}" for path in reads
                for producer, (_, writes) in io.items() if producer != consumer and path in writes}
        got = waits.get(consumer, set())
        if got != want:
            out.append(f"{consumer} waits for {sorted(got)}; the stages of its release that write what it reads: {sorted(want)}")
    return out


PER_RENDER = {f.__name__: f for f in (path_chain, gpu_arithmetic, launcher_command, configmap_wiring, volume_wiring,
                                        api_server, secret_flow, vllm_routes, served_model, identity, pipeline_order,
                                        placement)}


def check(r: Render, only=None) -> dict[str, list[str]]:
    """{invariant: problems} of every invariant that does not hold (an
    invariant that crashes on the render is a problem too)."""
    found = {}
    for name, f in PER_RENDER.items():
        if only and name not in only:
            continue
        try:
            problems = f(r)
        except Exception as e:  # noqa: BLE001 - a malformed render is a finding, not a harness crash
            problems = [f"could not check: {type(e).__name__}: {e}"]
        if problems:
            found[name] = problems
    return found


# ---------------------------------------------------------------------------
# Invariants over pairs of renders.


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
            out.append([c.get("image"), c.get("command"), c.get("args"), c.get("env"), c.get("workingDir"),
                        sorted((m.get("mountPath"), m.get("name")) for m in c.get("volumeMounts") or []),
                        {k: x for k, x in (res.get("limits") or {}).items() if k not in ("cpu", "memory")}])
        for vol in spec.get("volumes") or []:
            out.append([vol.get("name"), maps.get(vol["configMap"].get("name")) if "configMap" in vol else
                        {k: x for k, x in vol.items() if k != "name"}])
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
    if (a.release, a.values.get("nameOverride"), a.values.get("fullnameOverride")) != \
            (b.release, b.values.get("nameOverride"), b.values.get("fullnameOverride")):
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
        o = workload(r, stage) if stage != "workspace" else next(
            (x for x in stage_objects(r, stage) if x["kind"] == "Job"), None)
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
        return _canon(["download", m["source"], m["huggingfaceRepo"] if m["source"] == "huggingface"
                       else m["modelscopeRepo"], m["revision"], m["parametersBillion"]])
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
            out.append(f"{w}: written by {a.release}'s {wa[w][0]} and {b.release}'s {wb[w][0]} from different "
                       f"inputs: {wa[w][1]} vs {wb[w][1]}")
    for src, dst, writes in ((a, b, wa), (b, a, wb)):
        pa = plan(dst.values)
        for s, reads, _, _ in (ib if dst is b else ia):
            for rd in reads:
                if rd in writes:
                    role = next((k for k, rel in pa.items() if absolute(dst.values, rel) == rd), None)
                    prod = writes[rd][0]
                    expect = {"base": {"workspace"}, "sft": {"sft"}, "sftModel": {"merge-sft", "sft"},
                              "dpo": {"dpo"}, "dpoModel": {"merge-dpo", "dpo"}}.get(role, set())
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

