"""Cluster tier: the real scheduler places every preset's pods on the node shapes it is written
for (scripts/k8s/nodes.yaml: 2 x A100 40GB, 4 x A100 80GB, 8 x A100 40GB, CPU-only).

No T9k operator runs here, so the test creates the pods the stage's objects would create, from
their pod templates (a DeepSpeedJob's workers × replicas, the Notebook's one pod, a Job's pod,
a Deployment's replicas): the T9k controllers add their own environment and volumes, not
resources. A pod that asks for GPUs gets a node affinity for cards of at least
common.gpu.memoryGiB (the nvidia.com/gpu.memory label of GPU feature discovery), so "fits"
means: fits a node whose cards are the size the preset was sized for.
"""

from __future__ import annotations

import copy

import pytest
import yaml

import commands
import waits
from chartkit.chart import STAGES, presets
from harness.testkit import pod_templates
from kube import create_pvc, render

pytestmark = [pytest.mark.cluster, pytest.mark.kwok]

ORIGINAL_NODE = "a100-40gb-x2-0"  # the original example's node: 2 x A100 40GB
GPU = "nvidia.com/gpu"


def gpus(spec: dict) -> int:
    return sum(int(((c.get("resources") or {}).get("limits") or {}).get(GPU, 0)) for c in spec["containers"])


def pods_of(rendered: list[dict], card_gib: int | None, node: str | None = None) -> list[dict]:
    """The pods the rendered objects would run (helm test hooks left out)."""
    out = []
    for obj, spec, meta in pod_templates(rendered):
        if (obj["metadata"].get("annotations") or {}).get("helm.sh/hook"):
            continue
        kind = obj["kind"]
        count = (
            obj["spec"]["worker"].get("replicas", 1)
            if kind == "DeepSpeedJob"
            else obj["spec"].get("replicas", 1)
            if kind == "Deployment"
            else 1
        )
        for i in range(count):
            spec_i = copy.deepcopy(spec)
            if card_gib and gpus(spec_i):
                term = {"matchExpressions": [{"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": [str(card_gib * 1024 - 1)]}]}
                spec_i.setdefault("affinity", {}).setdefault("nodeAffinity", {})["requiredDuringSchedulingIgnoredDuringExecution"] = {
                    "nodeSelectorTerms": [term]
                }
            if node:
                spec_i["nodeSelector"] = {**(spec_i.get("nodeSelector") or {}), "kubernetes.io/hostname": node}
            name = f"{obj['metadata']['name'][:50]}-{kind.lower()[:4]}-{i}"
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "labels": {**((meta or {}).get("labels") or {}), "sched-test": "1"}},
                    "spec": spec_i,
                }
            )
    return out


def create(tools, ns: str, pods: list[dict]) -> None:
    tools.run(
        [tools.kubectl, "--kubeconfig", tools.kubeconfig, "create", "-n", ns, "-f", "-"],
        input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": pods}),
    )


def delete_all(tools, kube, ns: str) -> None:
    tools.run(
        [
            tools.kubectl,
            "--kubeconfig",
            tools.kubeconfig,
            "delete",
            "pods",
            "-n",
            ns,
            "-l",
            "sched-test=1",
            "--grace-period=0",
            "--force",
            "--wait=false",
        ],
        check=False,
    )
    waits.wait_for(
        lambda: [{"kind": "PodList", "items": kube.pods(ns, "sched-test=1")}],
        lambda lst: waits.SUCCEEDED if not lst["items"] else waits.RUNNING,
        what="the test pods to be deleted",
        count=1,
        timeout=60,
        interval=0.5,
    )


def placement(pod: dict) -> str:
    """succeeded once the scheduler bound the pod, failed once it says the pod does not fit."""
    if (pod.get("spec") or {}).get("nodeName"):
        return waits.SUCCEEDED
    for c in waits.conditions(pod):
        if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable":
            return waits.FAILED
    return waits.RUNNING


def unschedulable_message(pod: dict) -> str:
    return next(
        (c.get("message", "") for c in waits.conditions(pod) if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"), ""
    )


@pytest.fixture(scope="module")
def sched_ns(tools, namespace) -> str:
    create_pvc(tools, namespace)
    return namespace


CASES = [(p, s) for p in presets() for s in STAGES]


@pytest.mark.parametrize("preset,stage", CASES, ids=[f"{p.removesuffix('.yaml')}-{s}" for p, s in CASES])
def test_every_pod_fits_a_node_of_its_card_size(tools, kube, sched_ns, preset, stage):
    values = yaml.safe_load(open(commands.ROOT / "values" / preset))
    card = (values.get("common") or {}).get("gpu", {}).get("memoryGiB")
    rendered = render(tools, commands.release_name("s", preset, stage), sched_ns, values=[f"values/{preset}"], sets=[f"stages={{{stage}}}"])
    pods = pods_of(rendered, card)
    if not pods:
        assert stage == "workspace" and not any(o["kind"] == "Job" for o in rendered), rendered
        return
    create(tools, sched_ns, pods)
    try:
        placed = waits.wait_for(
            lambda: kube.pods(sched_ns, "sched-test=1"),
            placement,
            what=f"{preset} {stage}: {len(pods)} pod(s) placed",
            count=len(pods),
            timeout=60,
            interval=0.5,
        )
        nodes = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in placed}
        print(f"{preset} {stage}: {nodes}")
    finally:
        delete_all(tools, kube, sched_ns)


def test_walkthrough_notebook_and_2_gpu_sft_share_the_original_node(tools, kube, sched_ns):
    """Step 1 (workspace with its Notebook) and step 2 (SFT on 2 GPUs) of the README on the
    original example's one 2-GPU node: with the chart's defaults both run; a Notebook given a
    GPU (notebook.gpus=1, as the README says how) leaves the SFT worker unschedulable."""
    preset = ["values/8b-2xdp.yaml"]

    def pods(notebook_sets: list[str]) -> list[dict]:
        workspace = render(tools, "walk-ws", sched_ns, values=preset, sets=["stages={workspace}", *notebook_sets])
        sft = render(tools, "walk-sft", sched_ns, values=preset, sets=["stages={sft}"])
        notebook = [o for o in workspace if o["kind"] == "Notebook"]
        assert notebook, "the workspace stage renders no Notebook"
        return pods_of(notebook, None, ORIGINAL_NODE) + pods_of(sft, None, ORIGINAL_NODE)

    default = pods([])
    create(tools, sched_ns, default)
    try:
        waits.wait_for(
            lambda: kube.pods(sched_ns, "sched-test=1"),
            placement,
            count=len(default),
            timeout=60,
            what="Notebook and SFT worker with the chart's defaults on one 2-GPU node",
            interval=0.5,
        )
    finally:
        delete_all(tools, kube, sched_ns)

    with_gpu = pods(["notebook.gpus=1"])
    notebook_pod, sft_pod = with_gpu[0], with_gpu[1]
    assert gpus(notebook_pod["spec"]) == 1 and gpus(sft_pod["spec"]) == 2
    create(tools, sched_ns, [notebook_pod])
    try:
        waits.wait_for(
            lambda: kube.pods(sched_ns, "sched-test=1"), placement, count=1, timeout=60, what="the Notebook with a GPU", interval=0.5
        )
        create(tools, sched_ns, [sft_pod])
        with pytest.raises(waits.WaitFailed):
            waits.wait_for(
                lambda: [p for p in kube.pods(sched_ns, "sched-test=1") if p["metadata"]["name"] == sft_pod["metadata"]["name"]],
                placement,
                count=1,
                timeout=60,
                what="the SFT worker next to a GPU Notebook",
                interval=0.5,
            )
        (pending,) = [p for p in kube.pods(sched_ns, "sched-test=1") if p["metadata"]["name"] == sft_pod["metadata"]["name"]]
        assert "Insufficient nvidia.com/gpu" in unschedulable_message(pending), pending["status"]
    finally:
        delete_all(tools, kube, sched_ns)
