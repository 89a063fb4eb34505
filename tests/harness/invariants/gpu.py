"""GPU arithmetic and the launcher: the one value that sizes each workload, DeepSpeed's batch keys,
and the command the DeepSpeedJob's launcher runs."""

from __future__ import annotations

from chartkit.pipeline import pod_spec

from .reading import CONFIG_PATH, _gpus, config_file, flags, mounted_config
from .values import Render

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM 0.11.0's LoRAConfig.max_lora_rank choices


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
            for k in (c.get("resources") or {}).get(kind) or {}:
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
        for key, w in (
            ("train_micro_batch_size_per_gpu", micro),
            ("gradient_accumulation_steps", accum),
            ("train_batch_size", (micro or 0) * (accum or 0) * world),
        ):
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
            out.append(
                f"{where}: --tensor-parallel-size={f.get('tensor-parallel-size')} but serving.tensorParallelSize={s['tensorParallelSize']}"
            )
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
