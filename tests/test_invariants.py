"""The invariants (tests/harness/invariants/) over the presets: every preset with
every stage, a set of variants that switch on each conditional branch, and
pairs of renders that share one PVC (presets x methods x stages x two release
names). The same functions run over every changed leaf of values.yaml
(test_values_surface.py) and every fuzz example (test_fuzz_values.py).
Each invariant is also shown to fail on a render broken the way a template
fault would break it, so none of them holds vacuously."""

import copy
import itertools
import json
import re
import shutil

import pytest
import yaml

from chartkit import helm
from chartkit.chart import ROOT, STAGES
from harness import invariants as inv
from harness.testkit import PRESETS, load, rel

RELEASES = ("llama31-a", "team-b-llama-3-1-70b-instruct-sft-experiment-no-42")
# Settings that switch on a branch of the templates, each layered on every preset.
VARIANTS = {
    "defaults": (),
    "lora-served": ("serving.lora=true", "serving.model=sft", "training.lora.rank=16"),
    "api-key": ("serving.apiKey.existingSecret=vllm-key", "common.huggingface.existingSecret=hf"),
    "two-workers-rdma": ("training.workers=2", "training.rdma.enabled=true"),
    "elsewhere": (
        "storage.mountPath=/workspace",
        "storage.existingClaim=team-claim",
        "serving.service.port=9000",
        "model.name=Llama-X",
        "serving.servedModelName=chat",
        "eval.model=sft",
    ),
    "extras": (
        "common.scheduler.queue=team-a",
        "common.podLabels.team=a",
        "merge.exportDevice=auto",
        "merge.gpus=8",
        "eval.gpus=8",
        "common.extraVolumes.scratch.mountPath=/scratch",
        "common.extraVolumes.scratch.source.emptyDir.medium=Memory",
    ),
    "no-gpu-resource": ("common.gpu.resourceName=",),
}
# QLoRA needs fewer GPUs than the presets' sizes; full fine-tuning of 70B does not fit 4 cards.
METHODS = {
    "lora": ("training.method=lora", "training.deepspeed.zeroStage=3"),
    "qlora": ("training.method=qlora", "training.deepspeed.zeroStage=3"),
    "full": ("training.method=full", "training.deepspeed.zeroStage=3", "common.gpu.memoryGiB=141", "training.gpusPerWorker=8"),
}
NO_MERGE = tuple(s for s in STAGES if not s.startswith("merge"))


def release(preset, *sets, name="llama31", stages=STAGES):
    return rel(preset, tuple(stages), *sets, name=name)


# Per-stage scheduling on every stage over the team overlay: placement and every other invariant.
PLACED = {p: rel(p, tuple(STAGES), values=("values/team-example.yaml", "tests/values/placement.yaml")) for p in PRESETS}

PAIR_RELEASES = [
    release(p, *METHODS[m], name=n, stages=NO_MERGE if m == "full" else STAGES) for p in PRESETS for m in METHODS for n in RELEASES
]
PREFETCH = (
    [release(p, *VARIANTS[v]) for p in PRESETS for v in VARIANTS]
    + PAIR_RELEASES
    + [release("8b.yaml", "common.podLabels.team=b")]
    + list(PLACED.values())
)


@pytest.mark.parametrize("invariant", sorted(inv.PER_RENDER))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("preset", PRESETS)
def test_invariant_holds(preset, variant, invariant):
    found = inv.check(load(release(preset, *VARIANTS[variant])), only={invariant})
    assert found == {}, "\n".join(found[invariant])


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_identity_fields_agree(preset):
    values = inv.values_of((f"values/{preset}",))
    assert inv.identity_fields(values) == []


def test_identity_fields_catch_a_mismatch():
    values = inv.values_of(("values/8b.yaml",), ("model.huggingfaceRepo=meta-llama/Llama-3.1-70B",))
    assert inv.identity_fields(values)


def _renders_on_one_pvc():
    out = []
    for r in PAIR_RELEASES:
        proc = helm.template(r)
        if proc.returncode == 0:
            out.append(load(r))
        else:  # a combination the chart refuses by a rule
            assert "llama-factory: invalid values" in proc.stderr, proc.stderr
    return out


def test_renders_sharing_a_pvc_never_cross():
    """Every pair of presets x methods x stages x release names on one PVC."""
    renders = _renders_on_one_pvc()
    # Refused by the fit rules: 70B full fine-tuning, 70B LoRA in 16 bits on the 40 GB preset.
    assert len(renders) >= len(PAIR_RELEASES) - 6
    problems = []
    for a, b in itertools.combinations(renders, 2):
        problems += [
            f"{a.values['model']['name']}/{a.values['training']['method']}/{a.release} vs "
            f"{b.values['model']['name']}/{b.values['training']['method']}/{b.release}: {p}"
            for p in inv.shared_pvc(a, b)
        ]
    assert not problems, "\n".join(sorted(set(problems))[:20])


def test_upgrade_rule_over_a_chart_version_bump(tmp_path):
    """Bumping the chart version changes labels only: every job keeps its name
    and its whole content (a Job's pod template is immutable)."""
    copy_ = tmp_path / "chart"
    chart_files = ("Chart.yaml", "values.yaml", "values.schema.json", ".helmignore", "templates", "files", "values")
    copy_.mkdir()
    for name in chart_files:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, copy_ / name)
    chart = (copy_ / "Chart.yaml").read_text()
    (copy_ / "Chart.yaml").write_text(re.sub(r"^(version|appVersion): .*$", r'\1: "9.9.9"', chart, flags=re.M))
    r = release("8b.yaml", *VARIANTS["extras"])
    args = [str(helm.helm_path("3")), "template", r.name, str(copy_)] + helm.Release.args(r)[4:]
    bumped = tuple(d for d in yaml.safe_load_all(helm.run(args).stdout) if d)
    before = load(r)
    assert {o["metadata"]["labels"]["helm.sh/chart"] for o in bumped} == {"llama-factory-9.9.9"}
    assert inv.upgrade_rule(before, inv.Render(bumped, before.values, r.name)) == []


def test_upgrade_rule_over_pod_labels():
    a = load(release("8b.yaml", *VARIANTS["extras"]))
    b = load(release("8b.yaml", *VARIANTS["extras"][:1], "common.podLabels.team=b", *VARIANTS["extras"][2:]))
    assert inv.upgrade_rule(a, b) == []
    assert {o["metadata"]["name"] for o in a.objects if o["kind"] in inv.BATCH}.isdisjoint(
        o["metadata"]["name"] for o in b.objects if o["kind"] in inv.BATCH
    )


@pytest.mark.parametrize(
    "before,after",
    [
        ("training.workers=2", "training.workers=3"),  # the world size sits outside the hashed pod spec
        ("common.scheduler.queue=team-a", "common.scheduler.queue=team-b"),  # a Job pod label only
    ],
)
def test_upgrade_rule_over_settings_outside_the_pod_spec(before, after):
    a, b = load(release("8b.yaml", before)), load(release("8b.yaml", after))
    assert inv.upgrade_rule(a, b) == []


# ---------------------------------------------------------------------------
# Every invariant fails on a render broken the way a template fault breaks it.


def _edit_cm(objects, key, old, new):
    edited = [o for o in objects if o["kind"] == "ConfigMap" and old in o.get("data", {}).get(key, "")]
    assert edited, f"no ConfigMap has {old!r} in {key}"
    for o in edited:
        o["data"][key] = o["data"][key].replace(old, new)


def _container(objects, kind):
    for o, spec, _ in inv.pod_templates(objects):
        if o["kind"] == kind:
            return spec["containers"][0]


def _spec(objects, kind):
    for o, spec, _ in inv.pod_templates(objects):
        if o["kind"] == kind:
            return spec


FAULTS = {
    "path_chain": lambda objs: _edit_cm(
        objs, "merge.yaml", 'export_dir: "/t9k/mnt/models/Meta-Llama-3.1-8B-dpo"', 'export_dir: "/t9k/mnt/models/Meta-Llama-3.1-8B-sft"'
    ),
    "gpu_arithmetic": lambda objs: (
        _container(objs, "Deployment")["args"].append("--tensor-parallel-size=2")
        or _container(objs, "Deployment")["args"].remove("--tensor-parallel-size=1")
    ),
    "launcher_command": lambda objs: [o["spec"]["config"].pop("localRank") for o in objs if o["kind"] == "DeepSpeedJob"],
    "configmap_wiring": lambda objs: [
        o["data"].pop("ds_config.json") for o in objs if o["kind"] == "ConfigMap" and "ds_config.json" in o["data"]
    ],
    "volume_wiring": lambda objs: [
        v.update(emptyDir={"medium": "Memory", "sizeLimit": "64Gi"}) for v in _spec(objs, "DeepSpeedJob")["volumes"] if v["name"] == "dshm"
    ],
    "api_server": lambda objs: objs[0]["metadata"]["labels"].update({"team": "a b"}),
    "secret_flow": lambda objs: _container(objs, "Job")["env"].append({"name": "HF_TOKEN", "value": "hf_" + "a" * 30}),
    "vllm_routes": lambda objs: _container(objs, "Deployment")["livenessProbe"]["httpGet"].update(path="/healthz"),
    "served_model": lambda objs: [
        o["spec"]["containers"][0]["args"].__setitem__(0, o["spec"]["containers"][0]["args"][0].replace("8B-dpo", "8B-sft"))
        for o in objs
        if o["kind"] == "Pod"
    ],
    "identity": lambda objs: (
        _spec(objs, "Deployment")
        and [
            o["spec"]["template"]["metadata"]["labels"].update({"app.kubernetes.io/component": "x"})
            for o in objs
            if o["kind"] == "Deployment"
        ]
    ),
    # The CPU-only download Job gets a GPU node's selector.
    "placement": lambda objs: [
        o["spec"]["template"]["spec"].setdefault("nodeSelector", {}).update({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"})
        for o in objs
        if o["kind"] == "Job" and "-download-" in o["metadata"]["name"]
    ],
    # merge-dpo no longer waits for the DPO adapter it merges.
    "pipeline_order": lambda objs: [
        c["command"].remove(a)
        for o, spec, _ in inv.pod_templates(objs)
        for c in spec.get("initContainers", [])
        for a in list(c["command"])
        if a.startswith("dpo=") and "merge-dpo" in o["metadata"]["name"]
    ],
}


@pytest.mark.parametrize("preset", PRESETS)
def test_invariants_hold_with_per_stage_scheduling(preset):
    r = load(PLACED[preset])
    found = inv.check(r)
    assert found == {}, "\n".join(f"{k}: {p}" for k, ps in found.items() for p in ps)
    spec = {inv.pod_block(r, o): s for o, s, _ in inv.pod_templates(r.objects)}
    # GPU node selection only where GPUs are requested: not the download Job, the CPU merge
    # (merge.gpus is 0 in every preset) or the helm test Pod; a stage's selector wins a key.
    for cpu in ("download", "merge", None):
        assert "nvidia.com/gpu.product" not in spec[cpu].get("nodeSelector", {}), cpu
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} not in spec[cpu]["tolerations"]
    for gpu in ("notebook", "sft", "dpo", "serving"):
        assert spec[gpu]["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB", gpu
    assert spec["eval"]["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"


@pytest.mark.parametrize("invariant", sorted(inv.PER_RENDER))
def test_invariant_catches_its_fault(invariant):
    good = load(release("8b.yaml"))
    objs = copy.deepcopy(list(good.objects))
    FAULTS[invariant](objs)
    found = inv.check(inv.Render(tuple(objs), good.values, good.release), only={invariant})
    assert found.get(invariant), f"{invariant} missed its fault"


def test_path_chain_catches_a_cache_off_the_plan():
    """HF_HOME under the default mount path: right only while storage.mountPath is the default."""
    good = load(release("8b.yaml", "storage.mountPath=/data"))
    objs = copy.deepcopy(list(good.objects))
    for _o, spec, _ in inv.pod_templates(objs):
        for c in spec["containers"]:
            for e in c.get("env") or []:
                if e["name"] == "HF_HOME":
                    e["value"] = "/t9k/mnt/.cache/huggingface"
    assert inv.check(inv.Render(tuple(good.objects), good.values, good.release), only={"path_chain"}) == {}
    found = inv.check(inv.Render(tuple(objs), good.values, good.release), only={"path_chain"})
    assert any("HF_HOME='/t9k/mnt/.cache/huggingface', the path plan says /data/.cache/huggingface" in p for p in found["path_chain"])


@pytest.mark.parametrize(
    "key,ok",
    [
        ("HF_TOKEN", True),
        ("token.txt", True),
        (".dockercfg", True),
        ("*a", False),
        (".", False),
        ("..", False),
        ("..a", False),
        ("", False),
        ("a" * 254, False),
    ],
)
def test_api_server_rule_for_secret_keys(key, ok):
    """apimachinery's IsConfigMapKey, for the key of every secretKeyRef (found
    by the cluster fuzz test: serving.apiKey.key='*a' passed every offline tier)."""
    objs = copy.deepcopy(list(load(release("8b.yaml")).objects))
    _container(objs, "Job")["env"].append({"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": key}}})
    found = [p for p in inv.apiserver_rules(objs) if "secretKeyRef.key" in p]
    assert bool(found) != ok, found


def test_api_server_rule_for_access_modes():
    """ReadWriteOncePod only alone (found by the cluster fuzz test)."""
    objs = copy.deepcopy(list(load(release("8b.yaml")).objects))
    (pvc,) = [o for o in objs if o["kind"] == "PersistentVolumeClaim"]
    assert not [p for p in inv.apiserver_rules(objs) if "accessModes" in p]
    pvc["spec"]["accessModes"] = ["ReadWriteMany", "ReadWriteOncePod"]
    assert [p for p in inv.apiserver_rules(objs) if "accessModes" in p]


def test_pair_invariants_catch_their_faults():
    a = load(release("8b.yaml", *VARIANTS["extras"]))
    objs = copy.deepcopy(list(a.objects))
    for o in objs:
        if o["kind"] == "ConfigMap" and "train.yaml" in o["data"]:
            o["data"]["train.yaml"] = o["data"]["train.yaml"].replace("learning_rate: 0.00001", "learning_rate: 0.1")
    assert any("computes changed" in p for p in inv.upgrade_rule(a, inv.Render(tuple(objs), a.values, a.release)))
    b = load(release("8b.yaml", *METHODS["qlora"], name=RELEASES[0]))
    objs = copy.deepcopy(list(b.objects))
    _edit_cm(objs, "train.yaml", "saves/Meta-Llama-3.1-8B/qlora/sft", "saves/Meta-Llama-3.1-8B/lora/sft")
    c = load(release("8b.yaml", *METHODS["lora"], name=RELEASES[1]))
    assert inv.shared_pvc(inv.Render(tuple(objs), b.values, b.release), c)
    assert json.dumps(inv.route_table()["auth"]) == '{"prefix": "/v1", "middleware": "AuthenticationMiddleware"}'
