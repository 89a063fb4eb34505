"""The CI overlays (values/ci-*.yaml) that the cluster tier installs, checked offline: they
render alike with Helm 3 and 4, pass the Kubernetes schemas, request no GPU and fit a CI
runner, and the serve overlay serves what the workspace overlay downloads.

Not marked `cluster`: runs everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import commands
from chartkit import helm, k8s
from chartkit.chart import presets
from chartkit.pipeline import pod_templates

# --- the CI overlays -----------------------------------------------------------------------

OVERLAYS = (commands.CI_WORKSPACE, commands.CI_SERVE)


def render(values: str, major: str = "3", sets: tuple[str, ...] = ()) -> tuple[dict, ...]:
    return helm.render(helm.Release(values=(values,), sets=sets, major=major, name="ci"))


def test_overlays_are_not_presets():
    assert not {Path(v).name for v in OVERLAYS} & set(presets())


@pytest.mark.parametrize("values", OVERLAYS)
def test_overlay_renders_alike_with_helm_3_and_4_and_lints(values):
    assert render(values, "3") == render(values, "4")
    for major in helm.MAJORS:
        proc = helm.lint((values,), (), major)
        assert proc.returncode == 0 and "[WARNING]" not in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("version", k8s.K8S_VERSIONS)
@pytest.mark.parametrize("values", OVERLAYS)
def test_overlay_objects_pass_the_kubernetes_schemas(values, version):
    for o in render(values):
        assert k8s.errors(o, version) == [], f"{o['kind']}/{o['metadata']['name']}"


@pytest.mark.parametrize("values", OVERLAYS)
def test_overlay_requests_no_gpu_and_fits_a_ci_runner(values):
    """No extended resource at all; requests small enough for a 4-CPU, 16 GB GitHub runner
    that also runs the kind control plane."""
    for o, spec, _ in pod_templates(render(values)):
        for c in spec["containers"]:
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert set(res.get(part, {})) <= {"cpu", "memory"}, (o["kind"], c["name"], res)
            req = res.get("requests", {})
            cpu = req.get("cpu", "0")
            assert (int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)) <= 1, (o["kind"], req)
            mem = req.get("memory", "0Mi")
            assert int(mem[:-2]) * (1024 if mem.endswith("Gi") else 1) <= 3 * 1024, (o["kind"], req)
    text = yaml.safe_dump_all(render(values))
    assert "gpu" not in text.replace("gpu-memory-utilization", "").lower()


def test_workspace_overlay_makes_a_small_rwo_pvc_and_a_suspended_notebook():
    objects = render(commands.CI_WORKSPACE)
    assert {o["kind"] for o in objects} == {"PersistentVolumeClaim", "Notebook", "ConfigMap", "Job"}
    (pvc,) = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] in ("1Gi", "2Gi")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "storageClassName" not in pvc["spec"], "kind's default class (local-path) must serve it"
    (nb,) = [o for o in objects if o["kind"] == "Notebook"]
    assert nb["spec"]["suspend"] is True
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap"]
    plan = json.loads(cm["data"]["download.json"])
    assert plan["model"]["repo"] == "HuggingFaceTB/SmolLM2-135M" and not plan.get("datasets")


def test_second_workspace_release_reuses_the_claim():
    objects = render(commands.CI_WORKSPACE, sets=("storage.existingClaim=llama-factory", "notebook.enabled=false"))
    assert {o["kind"] for o in objects} == {"ConfigMap", "Job"}
    (job,) = [o for o in objects if o["kind"] == "Job"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["llama-factory"]


def test_serve_overlay_serves_what_the_workspace_overlay_downloads():
    ws, sv = render(commands.CI_WORKSPACE), render(commands.CI_SERVE)
    (cm,) = [o for o in ws if o["kind"] == "ConfigMap"]
    target = json.loads(cm["data"]["download.json"])["model"]["target"]
    (pvc,) = [o for o in ws if o["kind"] == "PersistentVolumeClaim"]
    (dep,) = [o for o in sv if o["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["command"] == ["vllm", "serve"] and c["args"][0] == target
    f = dict(a[2:].split("=", 1) if "=" in a else (a[2:], True) for a in c["args"][1:])
    assert f["tensor-parallel-size"] == "1" and f["served-model-name"] == Path(target).name
    assert int(f["max-model-len"]) <= 2048 and f["dtype"] == "float32" and f["enforce-eager"] is True
    claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [pvc["metadata"]["name"]]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    # The download Job runs the serving image: the node pulls one large image, not two.
    (job,) = [o for o in ws if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == c["image"]
    assert "cpu" in c["image"]
    probe = c["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 600
    assert dep["spec"]["progressDeadlineSeconds"] >= probe["periodSeconds"] * probe["failureThreshold"]
    (test_pod,) = [o for o in sv if o["kind"] == "Pod"]
    assert f'"id":"{Path(target).name}"' in test_pod["spec"]["containers"][0]["args"][0]
