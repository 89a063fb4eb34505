"""The invariants a reviewer checks by hand, on every preset × stage (the full
tier 3 grows in a later issue): the path chain, GPU counts, names, labels,
/dev/shm, secrets."""
import re

import pytest

from chartkit import pipeline
from chartkit.chart import STAGES
from conftest import PRESETS, one, pod_templates, render

LABELS = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
          "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "helm.sh/chart"}


def stage_io(preset, stage, *sets):
    return pipeline.stage_io(stage, render(preset, stage, *sets))


@pytest.mark.parametrize("preset", PRESETS)
def test_each_stage_reads_what_the_stage_before_wrote(preset):
    io = {s: stage_io(preset, s) for s in STAGES}
    base, = io["workspace"].writes
    assert io["sft"].reads == [base]
    sft_adapter, = io["sft"].writes
    assert io["merge-sft"].reads == [base, sft_adapter]
    sft_model, = io["merge-sft"].writes
    assert io["dpo"].reads == [sft_model]
    dpo_adapter, = io["dpo"].writes
    assert io["merge-dpo"].reads == [sft_model, dpo_adapter]
    dpo_model, = io["merge-dpo"].writes
    assert io["eval"].reads == [dpo_model] and io["serve"].reads == [dpo_model]
    assert len({base, sft_adapter, sft_model, dpo_adapter, dpo_model}) == 5


@pytest.mark.parametrize("model,lora,reads", [
    ("base", False, ["models/M"]), ("sft", False, ["models/M-sft"]),
    ("sft", True, ["models/M", "saves/M/lora/sft"]), ("dpo", True, ["models/M-sft", "saves/M/lora/dpo"]),
])
def test_serve_and_eval_read_the_chosen_model(model, lora, reads):
    io = stage_io("8b.yaml", "serve", "model.name=M", f"serving.model={model}", f"serving.lora={str(lora).lower()}")
    assert io.reads == [f"/t9k/mnt/{r}" for r in reads]
    if not lora:
        assert stage_io("8b.yaml", "eval", "model.name=M", f"eval.model={model}").reads == [f"/t9k/mnt/{reads[0]}"]


def test_full_fine_tuning_feeds_dpo_eval_and_serve_directly():
    sets = ("training.method=full", "training.gpusPerWorker=4", "training.deepspeed.zeroStage=3", "common.gpu.memoryGiB=80")
    sft_out, = stage_io("8b.yaml", "sft", *sets).writes
    assert stage_io("8b.yaml", "dpo", *sets).reads == [sft_out]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_gpu_limit_is_slots_per_worker(preset, stage):
    dj = one(render(preset, stage), "DeepSpeedJob")
    (c,) = dj["spec"]["worker"]["template"]["spec"]["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == dj["spec"]["config"]["slotsPerWorker"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == dj["spec"]["config"]["slotsPerWorker"]


@pytest.mark.parametrize("preset", PRESETS)
def test_vllm_tensor_parallel_is_the_gpu_limit(preset):
    c = one(render(preset, "serve"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert f"--tensor-parallel-size={c['resources']['limits']['nvidia.com/gpu']}" in c["args"]


def _mib(q):
    return int(q[:-2]) * {"Mi": 1, "Gi": 1024, "Ti": 1024 ** 2}[q[-2:]]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("stage", STAGES)
def test_pods_have_resources_labels_and_sized_shm(preset, stage):
    for obj, spec, meta in pod_templates(render(preset, stage)):
        if meta is not None:
            assert LABELS <= set(meta["labels"]), obj["metadata"]["name"]
        assert LABELS <= set(obj["metadata"]["labels"])
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            assert {"requests", "limits"} <= set(c["resources"]), c["name"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            for m in c.get("volumeMounts", []):
                if m["mountPath"] == "/dev/shm":
                    ed = vols[m["name"]]["emptyDir"]
                    assert ed["medium"] == "Memory" and "sizeLimit" in ed
                    assert 2 * _mib(ed["sizeLimit"]) <= _mib(c["resources"]["limits"]["memory"])


def test_names_fit_63_characters_and_never_collide_across_releases():
    long = "team-a-llama-3-1-70b-instruct-sft-experiment-no-42"  # Helm allows 53
    seen = {}
    for release in ("llama31-a", "llama31-b", long, long + "x"):
        for stage in STAGES:
            for o in render("70b-4xdp.yaml", stage, name=release):
                name, kind = o["metadata"]["name"], o["kind"]
                assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
                if kind in ("DeepSpeedJob", "Job"):
                    assert len(name) <= 52, f"{name}: the controller's pod names must stay under 63"
                if kind == "PersistentVolumeClaim":
                    continue  # shared by design
                key = (kind, name)
                assert key not in seen, f"{key} rendered by {seen.get(key)} and {(release, stage)}"
                seen[key] = (release, stage)


TOKENISH = re.compile(r"(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,})")


@pytest.mark.parametrize("stage", STAGES)
def test_tokens_only_by_secret_reference(stage):
    objects = render("8b.yaml", stage, values=("tests/values/rich.yaml",))
    for obj, spec, _ in pod_templates(objects):
        for c in spec["containers"]:
            for e in c.get("env", []):
                if e["name"] in ("HF_TOKEN", "VLLM_API_KEY", "WANDB_API_KEY"):
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], e
    assert not TOKENISH.search(str(objects))
