"""Overlays. A team overlay sets queue, priority, storage class, registry, pull secrets,
HF endpoint, node selector, tolerations and affinity for every stage at once; the upstream-image
overlay runs LLaMA-Factory's published image."""

import re

import pytest
import yaml

from chartkit.chart import ROOT, STAGES
from harness import invariants as inv
from harness.testkit import PRESETS, load, pod_templates, rel, render

TEAM = yaml.safe_load((ROOT / "values/team-example.yaml").read_text())["common"]
GPU = "nvidia.com/gpu"


@pytest.mark.parametrize("stage", STAGES)
def test_team_overlay_reaches_every_pod(stage):
    """Every pod: the team's registry, pull secret, affinity, Hugging Face mirror and token,
    pod labels and queue; the GPU node selector and toleration exactly on pods that request
    GPUs; a stage's own scheduling over the common one (download and merge on their CPU
    pools, sft in its own queue)."""
    r = load(rel("8b-2xdp.yaml", stage, values=("values/team-example.yaml",)))
    pods = list(pod_templates(r.objects))
    assert pods
    for obj, spec, meta in pods:
        where = f"{stage} {obj['kind']}"
        block = inv.pod_block(r, obj)
        gpus = any(GPU in ((c.get("resources") or {}).get("limits") or {}) for c in spec["containers"])
        own = ((r.values.get(block) or {}).get("scheduling") or {}) if block else {}
        assert spec.get("nodeSelector", {}) == {**(TEAM["gpu"]["nodeSelector"] if gpus else {}), **own.get("nodeSelector", {})}, where
        assert spec.get("tolerations", []) == (TEAM["gpu"]["tolerations"] if gpus else []), where
        assert spec["affinity"] == TEAM["affinity"], where
        assert spec["imagePullSecrets"] == [{"name": "team-a-registry"}], where
        for c in spec["containers"]:
            assert c["image"].startswith("registry.team-a.example.com/"), where
            if obj["kind"] != "Pod":  # the helm test pod talks to the Service only
                env = {e["name"]: e for e in c["env"]}
                assert env["HF_ENDPOINT"]["value"] == "https://hf-mirror.com", where
                assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "team-a-hf-token", "key": "token"}
        queue = inv.stage_setting(r.values, block, "queue")
        if obj["kind"] == "DeepSpeedJob":
            assert obj["spec"]["scheduler"] == {
                "t9kScheduler": {"queue": queue, "priority": inv.stage_setting(r.values, block, "priority")}
            }
        elif obj["kind"] == "Notebook":
            assert obj["spec"]["scheduler"] == {"t9kScheduler": {"queue": queue}}
        else:
            assert spec["schedulerName"] == "t9k-scheduler", where
            assert meta["labels"]["scheduler.tensorstack.dev/queue"] == queue, where
            assert meta["labels"]["team"] == "team-a"
    if stage == "sft":
        (dj,) = r.of("DeepSpeedJob")
        assert dj["spec"]["scheduler"]["t9kScheduler"] == {"queue": "team-a-train", "priority": 90}
    for o in r.objects:
        assert o["metadata"]["labels"]["cost-center"] == "team-a-ml", o["kind"]
        if o["kind"] == "PersistentVolumeClaim":
            assert o["spec"]["storageClassName"] == "team-a-cephfs"
            assert o["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# values/image-upstream.yaml: LLaMA-Factory's own published image (hiyouga/llamafactory).
UPSTREAM = "values/image-upstream.yaml"
UPSTREAM_VALUES = yaml.safe_load((ROOT / UPSTREAM).read_text())
LF_CONTAINERS = {"download", "worker", "merge", "eval"}


def test_upstream_image_tag_is_the_release_the_configs_are_written_for():
    """The tag is LLaMA-Factory's release (its release workflow tags the image with it): the
    chart's appVersion and the pin of the chart's own image."""
    chart = yaml.safe_load((ROOT / "Chart.yaml").read_text())
    pin = re.search(r"^llamafactory==(\S+)$", (ROOT / "images/llama-factory/requirements.txt").read_text(), re.M)
    image = UPSTREAM_VALUES["images"]["llamaFactory"]
    assert (image["registry"], image["repository"]) == ("docker.io", "hiyouga/llamafactory")
    assert image["tag"] == chart["appVersion"] == pin.group(1)


@pytest.mark.parametrize("major", ("3", "4"))
@pytest.mark.parametrize("preset", [p for p in PRESETS if "qlora" not in p])
@pytest.mark.parametrize("stage", STAGES)
def test_upstream_image_runs_every_llama_factory_container(preset, stage, major):
    """Every preset × stage renders with the overlay (the memory rules hold without Liger's
    fused loss), and each container of the LLaMA-Factory image gets the published one."""
    objects = render(preset, stage, major=major, values=(UPSTREAM,))
    image = "docker.io/hiyouga/llamafactory:" + UPSTREAM_VALUES["images"]["llamaFactory"]["tag"]
    for obj, spec, _ in pod_templates(objects):
        for c in spec["containers"]:
            if c["name"] in LF_CONTAINERS:
                assert c["image"] == image, (obj["kind"], c["name"])
                env = {e["name"]: e.get("value") for e in c["env"]}
                assert env["USER"] == "llama" and env["HOME"] == "/tmp"
            else:
                assert "hiyouga" not in c["image"], (obj["kind"], c["name"])
    for o in objects:
        if o["kind"] == "ConfigMap" and "train.yaml" in o["data"]:
            assert yaml.safe_load(o["data"]["train.yaml"]).get("enable_liger_kernel") in (None, False)
        if o["kind"] == "ConfigMap" and "download.json" in o["data"]:
            # The image's LLaMA-Factory checkout (WORKDIR /app) holds data/identity.json.
            assert '"imageDataDir": "/app/data"' in o["data"]["download.json"]


def test_upstream_image_keeps_the_restricted_profile():
    """Built to run as root, the image only needs to be read: the chart's UID 1000 and
    read-only root filesystem stay, so every stage writes the PVC as one user."""
    for obj, spec, _ in pod_templates(render("8b-2xdp.yaml", STAGES, values=(UPSTREAM,))):
        assert spec["securityContext"]["runAsUser"] == 1000, obj["kind"]
        for c in spec["containers"]:
            if c["name"] in LF_CONTAINERS:
                assert c["securityContext"]["readOnlyRootFilesystem"] is True
                assert c["securityContext"]["runAsNonRoot"] is True
