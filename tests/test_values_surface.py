"""Every option a values file offers reaches the rendered objects: each leaf of
values.yaml is changed to another valid value and the render must change.
A value that changes nothing is dead (or documented wrongly). With the leaf
changed, every invariant (tests/harness/invariants/) still holds, and the pair
before/after obeys the upgrade rule."""

import json

import pytest
import yaml

from chartkit import helm
from chartkit.chart import ROOT
from harness import invariants as inv

VALUES = yaml.safe_load((ROOT / "values.yaml").read_text())
SCHEMA = json.loads((ROOT / "values.schema.json").read_text())
RICH = ("tests/values/rich.yaml",)

# Leaves whose change shows only under another setting: (path) -> extra --set-json.
CONTEXT = {
    "model.modelscopeRepo": ['model.source="modelscope"'],
    "serving.maxLoras": ["serving.lora=true"],
    "merge.exportDevice": ["merge.gpus=1"],
    "training.multiWorkerSecurityContext": ["training.workers=2"],
    "training.rdma.resourceName": ["training.rdma.enabled=true"],
    # On an 80 GB card the chart turns checkpointing off by itself (null): true shows.
    "training.gradientCheckpointing": ["common.gpu.memoryGiB=80"],
    "training.gradientCheckpointingLayers": ["common.gpu.memoryGiB=80"],
    # The rich values train QLoRA, whose small weights let the chart turn checkpointing off and
    # keep 1 row / pair per micro batch; an explicit split of 4 rows or 2 pairs turns it on.
    "sft.perDeviceTrainBatchSize": ["sft.batchPerGpu=4"],
    "sft.gradientAccumulationSteps": ["sft.batchPerGpu=4"],
    "dpo.perDeviceTrainBatchSize": ["common.gpu.memoryGiB=80"],
    "dpo.gradientAccumulationSteps": ["common.gpu.memoryGiB=80"],
}
# The model facts of a repository files/models.yaml knows are checked against it: change them
# on a model the chart does not know.
CONTEXT.update(
    {
        f"model.{k}": ['model.huggingfaceRepo="team/own-model"']
        for k in ("parametersBillion", "numKeyValueHeads", "hiddenSize", "numLayers", "vocabSize")
    }
)
# Values that size the cross-field checks and render nothing themselves: a
# change must flip a check instead, and the failure must name the value.
CHECK_ONLY = {
    "model.parametersBillion": (70, "model.parametersBillion"),
    "model.numKeyValueHeads": (3, "model.numKeyValueHeads"),
    "common.gpu.memoryGiB": (8, "common.gpu.memoryGiB"),
}
# Changes a generic rule cannot pick (bounds, cross-field rules, formats).
MUTATION = {
    "stages": ["sft", "dpo"],
    "datasets": {"team_sft": {"file_name": "team.json"}},
    "model.parametersBillion": 7,
    "model.numKeyValueHeads": 16,
    "model.revision": "v1.0",
    "model.huggingfaceRepo": "meta-llama/Llama-3.1-8B-Instruct",
    "model.modelscopeRepo": "LLM-Research/Meta-Llama-3.1-8B-Instruct",
    "images.llamaFactory.digest": "sha256:" + "a" * 64,
    "images.vllm.digest": "sha256:" + "b" * 64,
    "images.notebook.digest": "sha256:" + "c" * 64,
    "images.test.digest": "sha256:" + "d" * 64,
    "common.imageRegistry": "mirror.example.com",
    "common.gpu.resourceName": "amd.com/gpu",
    "common.gpu.memoryGiB": 80,
    "common.huggingface.endpoint": "https://hf.example.com",
    "common.huggingface.existingSecret": "other-token",
    "storage.mountPath": "/workspace",
    "storage.size": "300Gi",
    "storage.accessModes": ["ReadWriteOnce"],
    "storage.existingClaim": "team-claim",
    "storage.name": "other-pvc",
    "training.lora.target": "q_proj,v_proj",
    "training.lora.alpha": 32,
    "training.lora.dropout": 0.05,
    "training.deepspeed.extraConfig": {"steps_per_print": 10},
    "training.gpusPerWorker": 2,
    "training.workers": 2,
    "training.preprocessingNumWorkers": 8,
    "training.ddpTimeout": 7200,
    "training.cutoffLen": 2048,
    "sft.cutoffLen": 2048,
    "training.gradientCheckpointing": True,
    "training.gradientCheckpointingLayers": 8,
    "sft.perDeviceTrainBatchSize": 4,
    "sft.gradientAccumulationSteps": 1,
    "dpo.perDeviceTrainBatchSize": 2,
    "dpo.gradientAccumulationSteps": 8,
    "model.vocabSize": 152064,
    "model.hiddenSize": 5120,
    "model.numLayers": 40,
    "dpo.cutoffLen": 2048,
    "training.cudaAllocConf": "expandable_segments:True,garbage_collection_threshold:0.8",
    "training.activeDeadlineSeconds": 86400,
    "merge.gpus": 1,
    "merge.exportDevice": "auto",
    "eval.gpus": 2,
    "eval.batchSize": 8,
    "eval.tasks": ["mmlu"],
    "serving.tensorParallelSize": 2,
    "serving.gpuMemoryUtilization": 0.85,
    "serving.networkPolicy.from": {"gw": {"podSelector": {"matchLabels": {"app": "gw"}}}},
    "serving.replicas": 2,
    "serving.servedModelName": "llama31-chat",
    "sft.datasets": ["alpaca_gpt4_en"],
    "dpo.datasets": ["dpo_mix_en"],
    "sft.maxSteps": 100,
    "dpo.maxSteps": 100,
    "download.ttlSecondsAfterFinished": 600,
    "merge.ttlSecondsAfterFinished": 600,
    "eval.ttlSecondsAfterFinished": 600,
    "common.podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 2000},
    "training.multiWorkerSecurityContext": {"runAsUser": 0, "capabilities": {"drop": ["ALL"], "add": ["SETUID"]}},
    "common.containerSecurityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": False,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def leaves(node, prefix=""):
    """Leaves of the chart-owned shape: free-form maps (no schema properties) are one leaf."""
    if isinstance(node, dict) and node and (not prefix or schema_at(prefix).get("additionalProperties") is False):
        for k, v in node.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix, node


def merged(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def schema_at(path):
    node = SCHEMA
    for part in path.split("."):
        node = node["properties"][part]
    return node


def mutate(path, value):
    if path in MUTATION:
        return MUTATION[path]
    node = schema_at(path)
    if "enum" in node:
        return next(e for e in node["enum"] if e != value)
    last = path.rsplit(".", 1)[-1]
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value + 1 if isinstance(value, int) else round(value / 2, 6) or 0.05
    if isinstance(value, str) and (".requests." in path or ".limits." in path):
        n = int(value.removesuffix("Gi")) if value.endswith("Gi") else int(value)
        if ".requests." in path:
            return f"{n // 2}Gi" if value.endswith("Gi") else str(max(1, n // 2))
        return f"{n * 2}Gi" if value.endswith("Gi") else str(n * 2)
    if last == "shmSize":
        return f"{int(value.removesuffix('Gi')) // 2}Gi"
    if isinstance(value, str):
        return value + "x" if value else "x"
    if isinstance(value, list):
        if last == "tolerations":
            return value + [{"key": "x", "operator": "Exists"}]
        return value + ["x"]
    if isinstance(value, dict):
        if last == "extraArgs":
            return {"seed": 7} if path.startswith(("training", "sft", "dpo", "merge")) else {"enforce-eager": True}
        if last == "scheduling":
            return {"nodeSelector": {"example.com/x": "y"}}
        if last == "image":
            return {"tag": "x"}
        if last in ("nodeSelector", "podLabels", "podAnnotations", "annotations", "labels"):
            return {"example.com/x": "y"}
        if last == "affinity":
            return {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 1, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
                    ]
                }
            }
        if last == "extraEnv":
            return {"FOO": "bar"}
        if last == "extraVolumes":
            return {"scratch": {"mountPath": "/scratch", "source": {"emptyDir": {}}}}
    raise AssertionError(f"no mutation rule for {path}={value!r}: add one to MUTATION")


EFFECTIVE = merged(VALUES, yaml.safe_load((ROOT / RICH[0]).read_text()))
LEAVES = [(p, v) for p, v in leaves(EFFECTIVE) if p not in CHECK_ONLY]


def render_text(*sets):
    return helm.run_template(helm.Release(values=RICH, sets=sets))


def release(*set_json):
    return helm.Release(values=RICH, set_json=set_json)


def helm_run(*set_json):
    """helm template of the rich values with --set-json overrides (cached: the
    unchanged render of a context is shared by every leaf)."""
    return helm.template(release(*set_json))


PREFETCH = [release(*CONTEXT.get(p, []), *extra) for p, v in LEAVES for extra in ((), (f"{p}={json.dumps(mutate(p, v))}",))]


@pytest.mark.parametrize("path,value", LEAVES, ids=[p for p, _ in LEAVES])
def test_value_reaches_the_render(path, value):
    new = mutate(path, value)
    assert new != value
    ctx = CONTEXT.get(path, [])
    before = helm_run(*ctx)
    after = helm_run(*ctx, f"{path}={json.dumps(new)}")
    assert before.returncode == 0, before.stderr
    assert after.returncode == 0, f"{path}={new!r} should be valid: {after.stderr}"
    assert before.stdout != after.stdout, f"{path}: changing it from {value!r} to {new!r} changed nothing"


def loaded(*set_json) -> inv.Render:
    proc = helm_run(*set_json)
    assert proc.returncode == 0, proc.stderr
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    objects = tuple(d for d in yaml.load_all(proc.stdout, Loader=loader) if d)
    return inv.Render(objects, inv.values_of(RICH, (), set_json), "llama31")


@pytest.mark.parametrize("path,value", LEAVES, ids=[p for p, _ in LEAVES])
def test_invariants_hold_with_the_leaf_changed(path, value):
    ctx = CONTEXT.get(path, [])
    change = f"{path}={json.dumps(mutate(path, value))}"
    before, after = loaded(*ctx), loaded(*ctx, change)
    found = inv.check(after)
    assert not found, f"{change}:\n" + "\n".join(f"{k}: {p}" for k, ps in found.items() for p in ps)
    assert inv.upgrade_rule(before, after) == [], change


@pytest.mark.parametrize("path", sorted(CHECK_ONLY))
def test_check_only_value_drives_its_check(path):
    new, needle = CHECK_ONLY[path]
    extra = CONTEXT.get(path, []) + (["serving.tensorParallelSize=2"] if path == "model.numKeyValueHeads" else [])
    assert helm_run(*extra).returncode == 0
    after = helm_run(*extra, f"{path}={json.dumps(new)}")
    assert after.returncode != 0 and needle in after.stderr, after.stderr


def test_every_dataset_field_reaches_dataset_info():
    text = render_text("datasets.team_sft.file_name=team.json", "datasets.team_sft.formatting=sharegpt", "sft.datasets={team_sft}")
    assert '"file_name": "/t9k/mnt/data/team.json"' in text and '"formatting": "sharegpt"' in text
