"""The command lines the cluster tier runs (commands.py), without a cluster: their exact text,
that every flag exists in the pinned Helm 3, Helm 4 and kubectl, and the CRDs it applies.

Not marked `cluster`: runs everywhere."""

from __future__ import annotations

import subprocess

import pytest
import yaml

import commands
from chartkit import helm
from chartkit.chart import ROOT

# --- command lines -----------------------------------------------------------------------

TOOLS = commands.Tools(helm="helm", kubectl="kubectl", kubeconfig="/k/config", helm_major="3")
CHART = str(ROOT)


def test_helm_install_command():
    argv = commands.helm_install(
        TOOLS,
        "ci-workspace",
        "ns1",
        values=["values/ci-workspace.yaml"],
        sets=["storage.existingClaim=llama-factory"],
        set_json=["sft.learningRate=2e-5"],
    )
    assert argv == [
        "helm",
        "install",
        "ci-workspace",
        CHART,
        "--kubeconfig",
        "/k/config",
        "--namespace",
        "ns1",
        "-f",
        f"{CHART}/values/ci-workspace.yaml",
        "--set",
        "storage.existingClaim=llama-factory",
        "--set-json",
        "sft.learningRate=2e-5",
        "--timeout",
        "10m",
    ]


def test_helm_dry_run_command():
    argv = commands.helm_install(TOOLS, "dry-8b-sft", "ns1", values=["values/8b.yaml"], sets=["stages={sft}"], dry_run="server")
    assert argv[-1] == "--dry-run=server" and "--wait" not in argv
    with pytest.raises(ValueError):
        commands.helm_install(TOOLS, "x", "ns1", dry_run="client")


def test_helm_lifecycle_commands():
    k = ["--kubeconfig", "/k/config", "--namespace", "ns1"]
    assert commands.helm_upgrade(TOOLS, "r", "ns1", values=["values/8b.yaml"]) == [
        "helm",
        "upgrade",
        "r",
        CHART,
        *k,
        "-f",
        f"{CHART}/values/8b.yaml",
        "--timeout",
        "10m",
    ]
    assert commands.helm_rollback(TOOLS, "r", "ns1", 1) == ["helm", "rollback", "r", "1", *k, "--timeout", "10m"]
    assert commands.helm_uninstall(TOOLS, "r", "ns1") == ["helm", "uninstall", "r", *k, "--wait", "--timeout", "10m"]
    assert commands.helm_test(TOOLS, "r", "ns1") == ["helm", "test", "r", *k, "--logs", "--timeout", "10m"]
    assert commands.helm_history(TOOLS, "r", "ns1") == ["helm", "history", "r", *k, "--output", "json"]
    assert commands.helm_template(TOOLS, "r", "ns1", sets=["stages={sft}"]) == [
        "helm",
        "template",
        "r",
        CHART,
        "--namespace",
        "ns1",
        "--set",
        "stages={sft}",
    ]


def test_kubectl_commands():
    assert commands.kubectl_apply_server_side(TOOLS, commands.CRD_FILES) == [
        "kubectl",
        "--kubeconfig",
        "/k/config",
        "apply",
        "--server-side",
        "--field-manager=llama-factory-e2e",
        "-f",
        f"{CHART}/tests/crds/deepspeedjobs.batch.tensorstack.dev.yaml",
        "-f",
        f"{CHART}/tests/crds/notebooks.tensorstack.dev.yaml",
    ]
    assert commands.kubectl_create_dry_run(TOOLS, "ns1") == [
        "kubectl",
        "--kubeconfig",
        "/k/config",
        "create",
        "--namespace",
        "ns1",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
    ]
    assert commands.kubectl_flatten("kubectl") == ["kubectl", "config", "view", "--flatten", "--raw"]


def test_names():
    assert commands.release_name("dry", "70b-4xdp-qlora.yaml", "merge-sft") == "dry-70b-4xdp-qlora-merge-sft"
    assert commands.unique_name("llf-serve", lambda n: "ab" * n) == "llf-serve-ababab"
    with pytest.raises(ValueError):
        commands.release_name("x" * 60)


def test_tool_selection(tmp_path):
    assert commands.helm_major({}) == "3" and commands.helm_major({"CLUSTER_HELM_MAJOR": "4"}) == "4"
    with pytest.raises(ValueError, match="CLUSTER_HELM_MAJOR"):
        commands.helm_major({"CLUSTER_HELM_MAJOR": "2"})
    assert commands.kubectl_path({"CLUSTER_KUBECTL": "/usr/bin/kubectl"}) == "/usr/bin/kubectl"
    pinned = ROOT / ".tools" / "bin" / "kubectl"
    if pinned.exists():
        assert commands.kubectl_path({}) == str(pinned)


def test_format_failure():
    msg = commands.format_failure(["helm", "install", "a b"], 1, "", "Error: INSTALLATION FAILED: boom\n")
    assert msg == "command failed (exit 1): helm install 'a b'\n--- stderr (last 4000 characters) ---\nError: INSTALLATION FAILED: boom"


def help_text(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def flags(argv: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in argv if a.startswith("--")}


@pytest.mark.parametrize("major", helm.MAJORS)
def test_every_helm_flag_exists_in_the_pinned_helm(major):
    tools = commands.Tools(helm=str(helm.helm_path(major)), kubectl="kubectl", kubeconfig="/k", helm_major=major)
    built = {
        "install": commands.helm_install(tools, "r", "n", values=["values/8b.yaml"], sets=["a=b"], set_json=["c=1"], dry_run="server"),
        "upgrade": commands.helm_upgrade(tools, "r", "n", values=["values/8b.yaml"], sets=["a=b"], set_json=["c=1"]),
        "rollback": commands.helm_rollback(tools, "r", "n", 1),
        "uninstall": commands.helm_uninstall(tools, "r", "n"),
        "test": commands.helm_test(tools, "r", "n"),
        "history": commands.helm_history(tools, "r", "n"),
        "status": commands.helm_status(tools, "r", "n"),
        "template": commands.helm_template(tools, "r", "n", values=["values/8b.yaml"], sets=["a=b"], set_json=["c=1"]),
    }
    for sub, argv in built.items():
        assert argv[1] == sub
        text = help_text([tools.helm, sub, "--help"])
        missing = [f for f in flags(argv) if f"{f} " not in text and f"{f}=" not in text and f"{f}[" not in text]
        assert not missing, f"helm {major} {sub}: no such flag(s) {missing}"


def test_every_kubectl_flag_exists_in_the_pinned_kubectl():
    kubectl = commands.kubectl_path({})
    tools = commands.Tools(helm="helm", kubectl=kubectl, kubeconfig="/k")
    global_flags = help_text([kubectl, "options"])
    for sub, argv in {
        "apply": commands.kubectl_apply_server_side(tools, ["f.yaml"]),
        "apply ": commands.kubectl_apply_manifest(tools, "n", "m"),
        "diff": commands.kubectl_diff_manifest(tools, "n", "m"),
        "delete": commands.kubectl_delete_manifest(tools, "n"),
        "create": commands.kubectl_create_dry_run(tools, "n"),
    }.items():
        sub = sub.strip()
        text = help_text([kubectl, sub, "--help"]) + global_flags
        missing = [f for f in flags(argv) if f"{f}=" not in text and f"{f}:" not in text and f"{f} " not in text]
        assert not missing, f"kubectl {sub}: no such flag(s) {missing}"


# --- CRDs ----------------------------------------------------------------------------------


def test_crd_files_are_ours_and_named_as_the_tier_expects():
    for path in commands.CRD_FILES:
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition"
        assert path.name == f"{crd['metadata']['name']}.yaml"
        assert commands.GENERATED_BY in crd["metadata"].get("annotations", {}), path.name


def test_crd_plan_never_overwrites_a_foreign_crd():
    ours = [
        {"metadata": {"name": "a.x", "annotations": {commands.GENERATED_BY: "gen"}}},
        {"metadata": {"name": "b.x", "annotations": {commands.GENERATED_BY: "gen"}}},
        {"metadata": {"name": "c.x", "annotations": {commands.GENERATED_BY: "gen"}}},
    ]
    live = {"a.x": None, "b.x": {"metadata": {"annotations": {commands.GENERATED_BY: "old"}}}, "c.x": {"metadata": {"name": "c.x"}}}
    apply, keep = commands.crd_plan(ours, live)
    assert apply == ["a.x", "b.x"]
    assert list(keep) == ["c.x"] and "not generated by this repo" in keep["c.x"]
