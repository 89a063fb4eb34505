"""Every branch of every cross-field rule of templates/_rules_*.tpl (collected by _validate.tpl), at the
boundaries: each rule is written here as a property of the values (the
predicate the chart must enforce), its cases are drawn from the schema's
bounds of the fields involved and from the rule's own threshold (just inside,
at, just outside), and each case asserts that Helm refuses the values with a
line naming the rule's field exactly when the predicate says so - never
Helm's wording. Only the lines naming the rule's field are read, so other
rules that a case also trips do not blur the verdict. (The ZeRO and
batch-memory fit rules are sized by their own tests.)"""

import itertools
import json

import pytest

from chartkit import helm
from chartkit.chart import ROOT
from harness import invariants as inv

SCHEMA = json.loads((ROOT / "values.schema.json").read_text())
RULE_MSG = "llama-factory: invalid values"


def bounds(path: str) -> list:
    """The schema's own edges of a numeric field."""
    node = SCHEMA
    for k in path.split("."):
        node = node["properties"][k]
    out = [node[k] for k in ("minimum", "maximum") if k in node]
    return out


def millicores(q) -> int:
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def mib(q: str) -> int:
    return int(q[:-2]) * {"Mi": 1, "Gi": 1024, "Ti": 1024**2}[q[-2:]]


# Each rule: field named by its line, the release's base (preset, stages, sets), the cases
# (extra --set-json overrides) and the predicate "the values break the rule".
RULES = {}


def rule(name, field, preset, stages, cases, broken, base=()):
    RULES[name] = dict(field=field, preset=preset, stages=stages, cases=list(cases), broken=broken, base=base)


# Tokenizer processes within the CPU limit (floor of the cores).
rule(
    "tokenizers-within-cpus",
    "training.preprocessingNumWorkers",
    "8b.yaml",
    ("sft",),
    [
        {"training.resources.limits.cpu": cpu, "training.resources.requests.cpu": "1", "training.preprocessingNumWorkers": n}
        for cpu in ("16", "15500m", 8)
        for n in sorted({*bounds("training.preprocessingNumWorkers"), millicores(cpu) // 1000, millicores(cpu) // 1000 + 1})
    ],
    lambda v: v["training"]["preprocessingNumWorkers"] > millicores(v["training"]["resources"]["limits"]["cpu"]) // 1000,
)

# vLLM's tensor parallel size divides the KV heads (memory rule kept out by a large card).
rule(
    "tp-divides-kv-heads",
    "serving.tensorParallelSize",
    "8b.yaml",
    ("serve",),
    [
        {"model.numKeyValueHeads": h, "serving.tensorParallelSize": tp}
        for h in sorted({*bounds("model.numKeyValueHeads"), 8})
        for tp in sorted({*bounds("serving.tensorParallelSize"), 3, 8})
    ],
    lambda v: v["model"]["numKeyValueHeads"] % v["serving"]["tensorParallelSize"] != 0,
    base=("common.gpu.memoryGiB=4096",),
)

# Served bf16 weights fit tp x card x utilisation (with 10 % headroom).
rule(
    "served-weights-fit",
    "serving.tensorParallelSize",
    "8b.yaml",
    ("serve",),
    [
        {"common.gpu.memoryGiB": card, "serving.gpuMemoryUtilization": u, "serving.tensorParallelSize": tp}
        for card, u, tp in ((20, 0.88, 1), (20, 0.87, 1), (10, 0.88, 2), (10, 0.87, 2), (4096, 1, 1), (1, 1, 1), (40, 0.9, 8))
    ],
    lambda v: (
        v["serving"]["tensorParallelSize"] * v["common"]["gpu"]["memoryGiB"] * v["serving"]["gpuMemoryUtilization"]
        < v["model"]["parametersBillion"] * 2.0 * 1.1
    ),
)

# LoRA serving: an adapter exists (not base, not full fine-tuning), its rank is servable.
rule(
    "served-adapter-exists",
    "serving.lora",
    "8b.yaml",
    ("serve",),
    [
        {"serving.lora": lora, "serving.model": m, "training.method": meth}
        for lora, m, meth in itertools.product((True, False), ("base", "sft", "dpo"), ("lora", "qlora", "full"))
    ],
    lambda v: v["serving"]["lora"] and (v["serving"]["model"] == "base" or v["training"]["method"] == "full"),
)
rule(
    "served-rank-within-vllm",
    "training.lora.rank",
    "8b.yaml",
    ("serve",),
    [
        {"serving.lora": lora, "serving.model": "sft", "training.lora.rank": r}
        for lora in (True, False)
        for r in sorted({*bounds("training.lora.rank"), 8, 512, 513})
    ],
    lambda v: v["serving"]["lora"] and v["training"]["lora"]["rank"] > 512,
)
rule(
    "max-lora-rank-override",
    "serving.extraArgs.max-lora-rank",
    "8b.yaml",
    ("serve",),
    [
        {"serving.lora": True, "serving.model": "sft", "training.lora.rank": 16, "serving.extraArgs": {"max-lora-rank": r}}
        for r in (8, 15, 16, 32)
    ],
    lambda v: v["serving"]["extraArgs"]["max-lora-rank"] < v["training"]["lora"]["rank"],
)

# Flags the chart derives from typed values cannot be overridden through serving.extraArgs.
OWNED_FLAGS = ("port", "tensor-parallel-size", "tensor_parallel_size", "served-model-name", "lora-modules", "enable-lora")
rule(
    "owned-vllm-flags",
    "serving.extraArgs.",
    "8b.yaml",
    ("serve",),
    [
        {"serving.extraArgs": {f: val}}
        for f, val in zip(OWNED_FLAGS + ("enforce-eager", "max-num-seqs"), (9000, 2, 2, "x", "x=/y", True, True, 64))
    ],
    lambda v: any(f.replace("_", "-") in OWNED_FLAGS for f in v["serving"]["extraArgs"]),
)

# Paths the chart derives cannot be moved through the LLaMA-Factory escape hatches.
OWNED_PATHS = ("output_dir", "model_name_or_path", "adapter_name_or_path", "dataset_dir", "export_dir", "deepspeed")
for _block, _stage in (("training", "sft"), ("sft", "sft"), ("dpo", "dpo"), ("merge", "merge-sft")):
    rule(
        f"owned-paths-{_block}",
        f"{_block}.extraArgs.",
        "8b.yaml",
        (_stage,),
        [{f"{_block}.extraArgs": {k: "/t9k/mnt/elsewhere"}} for k in OWNED_PATHS]
        + [{f"{_block}.extraArgs": {"seed": 7}}, {f"{_block}.extraArgs": {"output_dir_suffix": "x"}}],
        lambda v, b=_block: any(k in OWNED_PATHS for k in v[b]["extraArgs"]),
    )

# Evaluation holds the bf16 model on eval.gpus cards at 90 %.
rule(
    "eval-fits",
    "eval.gpus",
    "8b.yaml",
    ("eval",),
    [
        {"model.parametersBillion": p, "eval.gpus": g, "common.gpu.memoryGiB": 40}
        for p in (8, 70)
        for g in sorted({*bounds("eval.gpus"), 4, 5})
    ],
    lambda v: v["eval"]["gpus"] * v["common"]["gpu"]["memoryGiB"] * 0.9 < v["model"]["parametersBillion"] * 2.2,
)

# Merges: on CPU twice the bf16 model in the memory limit; on GPUs 1.1 x on the cards; never after full.
rule(
    "cpu-merge-memory",
    "merge.resources.limits.memory",
    "8b.yaml",
    ("merge-sft",),
    [
        {"merge.exportDevice": "cpu", "merge.resources.limits.memory": m, "merge.resources.requests.memory": "1Gi"}
        for m in ("32Gi", "32767Mi", "31Gi", "1Ti")
    ],
    lambda v: mib(v["merge"]["resources"]["limits"]["memory"]) / 1024 < v["model"]["parametersBillion"] * 4,
)
rule(
    "gpu-merge-memory",
    "merge.gpus",
    "8b.yaml",
    ("merge-dpo",),
    [
        {"merge.exportDevice": "auto", "merge.gpus": g, "common.gpu.memoryGiB": card}
        for g in bounds("merge.gpus") + [1]
        for card in (17, 18)
    ],
    lambda v: v["merge"]["gpus"] * v["common"]["gpu"]["memoryGiB"] < v["model"]["parametersBillion"] * 2.2,
)
rule(
    "no-merge-after-full",
    "stages",
    "8b.yaml",
    ("merge-sft",),
    [{"training.method": m, "stages": s} for m in ("lora", "qlora", "full") for s in (["merge-sft"], ["merge-dpo"], ["eval"])],
    lambda v: v["training"]["method"] == "full" and any(s.startswith("merge") for s in v["stages"]),
    base=("common.gpu.memoryGiB=4096",),
)

# DeepSpeed offload needs the ZeRO stage that shards what it offloads.
rule(
    "offload-params-needs-zero3",
    "training.deepspeed.offloadParams",
    "8b.yaml",
    ("sft",),
    [{"training.deepspeed.zeroStage": z, "training.deepspeed.offloadParams": o} for z in (0, 1, 2, 3) for o in (True, False)],
    lambda v: v["training"]["deepspeed"]["offloadParams"] and v["training"]["deepspeed"]["zeroStage"] != 3,
    base=("common.gpu.memoryGiB=141",),
)
rule(
    "offload-optimizer-needs-zero",
    "training.deepspeed.offloadOptimizer",
    "8b.yaml",
    ("sft",),
    [{"training.deepspeed.zeroStage": z, "training.deepspeed.offloadOptimizer": o} for z in (0, 1, 2, 3) for o in (True, False)],
    lambda v: v["training"]["deepspeed"]["offloadOptimizer"] and v["training"]["deepspeed"]["zeroStage"] == 0,
    base=("common.gpu.memoryGiB=141",),
)

# Datasets: registered; preference data for DPO only.
rule(
    "sft-datasets",
    "sft.datasets[0]",
    "8b.yaml",
    ("sft",),
    [{"sft.datasets": [d]} for d in ("identity", "dpo_mix_en", "not_registered")],
    lambda v: v["sft"]["datasets"][0] not in v["datasets"] or bool(v["datasets"][v["sft"]["datasets"][0]].get("ranking")),
)
rule(
    "dpo-datasets",
    "dpo.datasets[0]",
    "8b.yaml",
    ("dpo",),
    [{"dpo.datasets": [d]} for d in ("dpo_mix_en", "identity", "not_registered")],
    lambda v: v["dpo"]["datasets"][0] not in v["datasets"] or not v["datasets"][v["dpo"]["datasets"][0]].get("ranking"),
)

# Every pod: requests within limits, /dev/shm at most half of the memory limit.
for pod, stage in (
    ("training", "sft"),
    ("notebook", "workspace"),
    ("eval", "eval"),
    ("serving", "serve"),
    ("merge", "merge-sft"),
    ("download", "workspace"),
):
    rule(
        f"{pod}-memory-request",
        f"{pod}.resources.requests.memory",
        "8b.yaml",
        (stage,),
        [{f"{pod}.resources.limits.memory": "64Gi", f"{pod}.resources.requests.memory": r} for r in ("64Gi", "65537Mi", "1Mi")],
        lambda v, pod=pod: mib(v[pod]["resources"]["requests"]["memory"]) > mib(v[pod]["resources"]["limits"]["memory"]),
    )
    rule(
        f"{pod}-cpu-request",
        f"{pod}.resources.requests.cpu",
        "8b.yaml",
        (stage,),
        [{f"{pod}.resources.limits.cpu": "8", f"{pod}.resources.requests.cpu": r} for r in ("8", "8001m", 8.5, "100m")],
        lambda v, pod=pod: millicores(v[pod]["resources"]["requests"]["cpu"]) > millicores(v[pod]["resources"]["limits"]["cpu"]),
    )
    if pod not in ("merge", "download"):
        rule(
            f"{pod}-shm-half",
            f"{pod}.shmSize",
            "8b.yaml",
            (stage,),
            [
                {f"{pod}.resources.limits.memory": "64Gi", f"{pod}.resources.requests.memory": "1Gi", f"{pod}.shmSize": s}
                for s in ("32Gi", "32767Mi", "1Mi", "64Gi")
            ],
            lambda v, pod=pod: 2 * mib(v[pod]["shmSize"]) >= mib(v[pod]["resources"]["limits"]["memory"]),
        )

# What the chart owns cannot be taken through the free-form maps.
CHART_VOLUMES = ("workspace", "tmp", "dshm", "config")
rule(
    "extra-volume-names",
    "common.extraVolumes.",
    "8b.yaml",
    ("sft",),
    [{"common.extraVolumes": {n: {"mountPath": "/scratch", "source": {"emptyDir": {}}}}} for n in CHART_VOLUMES + ("scratch",)],
    lambda v: bool(set(v["common"]["extraVolumes"]) & set(CHART_VOLUMES)),
)
rule(
    "extra-volume-paths",
    "common.extraVolumes.scratch.mountPath",
    "8b.yaml",
    ("sft",),
    [
        {"common.extraVolumes": {"scratch": {"mountPath": p, "source": {"emptyDir": {}}}}}
        for p in ("/tmp", "/tmp/", "/dev/shm", "/etc/llama-factory", "/t9k/mnt", "/t9k/mnt/", "/t9k", "/data")
    ],
    lambda v: (
        v["common"]["extraVolumes"]["scratch"]["mountPath"].rstrip("/")
        in ("/tmp", "/dev/shm", "/etc/llama-factory", v["storage"]["mountPath"])
    ),
)
rule(
    "owned-pod-labels",
    "common.podLabels",
    "8b.yaml",
    ("sft",),
    [
        {"common.podLabels": {k: "x"}}
        for k in ("app.kubernetes.io/name", "helm.sh/chart", "scheduler.tensorstack.dev/queue", "team", "example.com/app.kubernetes.io")
    ],
    lambda v: any(
        k.startswith(("app.kubernetes.io/", "helm.sh/")) or k == "scheduler.tensorstack.dev/queue" for k in v["common"]["podLabels"]
    ),
)
rule(
    "pvc-access-modes",
    "storage.accessModes",
    "8b.yaml",
    ("workspace",),
    [
        {"storage.accessModes": m}
        for m in (
            ["ReadWriteMany"],
            ["ReadWriteOnce"],
            ["ReadOnlyMany"],
            ["ReadWriteOncePod"],
            ["ReadWriteOnce", "ReadWriteOncePod"],
            ["ReadOnlyMany", "ReadWriteMany"],
        )
    ],
    lambda v: (
        "ReadWriteOncePod" in v["storage"]["accessModes"] or not {"ReadWriteMany", "ReadWriteOnce"} & set(v["storage"]["accessModes"])
    ),
)
SECRETISH = ("GITHUB_TOKEN", "MY_SECRET", "DB_PASSWORD", "OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", "NCCL_DEBUG", "TOKENIZERS_PARALLELISM")
rule(
    "secrets-by-reference",
    "common.extraEnv.",
    "8b.yaml",
    ("sft",),
    [{"common.extraEnv": {n: val}} for n in SECRETISH for val in ("x", {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})],
    lambda v: any(not isinstance(val, dict) and inv.SECRET_NAME.search(n) for n, val in v["common"]["extraEnv"].items()),
)


def case_release(name, case):
    r = RULES[name]
    sets = ("stages={" + ",".join(r["stages"]) + "}",) + r["base"]
    return helm.Release(values=(f"values/{r['preset']}",), sets=sets, set_json=tuple(f"{k}={json.dumps(val)}" for k, val in case.items()))


CASES = [(name, i) for name, r in RULES.items() for i in range(len(r["cases"]))]
PREFETCH = [case_release(n, RULES[n]["cases"][i]) for n, i in CASES]


def names_field(stderr: str, field: str) -> bool:
    bullets = [ln for ln in stderr[stderr.index(RULE_MSG) :].splitlines() if ln.startswith("  - ")] if RULE_MSG in stderr else []
    return any(b[4:].startswith(field) for b in bullets)


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_refuses_exactly_what_breaks_it(name):
    r = RULES[name]
    wrong = []
    verdicts = set()
    for case in r["cases"]:
        rel = case_release(name, case)
        values = inv.values_of(rel.values, rel.sets, rel.set_json)
        broken = bool(r["broken"](values))
        verdicts.add(broken)
        proc = helm.template(rel)
        assert "values don't meet the specifications of the schema" not in proc.stderr, (case, proc.stderr)
        refused = proc.returncode != 0 and names_field(proc.stderr, r["field"])
        if refused != broken:
            wrong.append(
                f"{case}: the rule {'should refuse' if broken else 'should accept'}, Helm "
                f"{'refused naming ' + r['field'] if refused else 'did not (' + proc.stderr.strip()[:300] + ')'}"
            )
    assert verdicts == {True, False}, f"{name}: the cases do not reach both sides of the rule"
    assert not wrong, "\n".join(wrong)
