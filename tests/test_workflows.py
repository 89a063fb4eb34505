"""The GitHub workflows are valid, offline: scripts/check_workflows.py (YAML, the vendored GitHub
workflow schema of check-jsonschema, pinned actions and tools, existing local paths)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import check_workflows
import pytest

from chartkit.chart import ROOT

pytest.importorskip("check_jsonschema", reason="check-jsonschema is not installed (a pinned harness dependency)")


def test_the_repository_workflows_are_valid():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/check_workflows.py")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ".github/workflows/ci.yaml" in proc.stdout


def test_ci_runs_the_readme_command_the_cluster_tier_and_packages_the_chart():
    doc, errors = check_workflows.load(ROOT / ".github/workflows/ci.yaml")
    assert not errors
    runs = {job: " ".join(str(s.get("run", "")) for s in j["steps"]) for job, j in doc["jobs"].items()}
    uses = {job: [str(s.get("uses", "")).split("@")[0] for s in j["steps"]] for job, j in doc["jobs"].items()}
    assert any("make test" in r for r in runs.values())
    (kind,) = [j for j, u in uses.items() if "helm/kind-action" in u]
    matrix = doc["jobs"][kind]["strategy"]["matrix"]
    assert matrix["helm"] == ["3.19.0", "4.3.1"] and len(matrix["kubernetes"]) == 2
    assert "scripts/kind_e2e.sh" in runs[kind]
    (package,) = [j for j, r in runs.items() if "helm3 package ." in r]
    assert "actions/upload-artifact" in uses[package]
    # make test runs the cluster tier on the local control plane of both pinned minors.
    (test,) = [j for j, r in runs.items() if "make test" in r]
    assert "actions/setup-go" in uses[test]
    env = next(s.get("env") or {} for s in doc["jobs"][test]["steps"] if "make test" in str(s.get("run", "")))
    assert env.get("CLUSTER_REQUIRED") == "1" and env.get("K8S_MINORS") == "1.34 1.37", env


def test_ci_builds_the_image_the_chart_pulls_and_pushes_it_only_on_tags():
    from image_ref import image_ref

    doc, _ = check_workflows.load(ROOT / ".github/workflows/ci.yaml")
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert on["push"]["tags"] == ["v*"], on
    (job,) = [j for j in doc["jobs"].values() if any(str(s.get("uses", "")).startswith("docker/build-push-action@") for s in j["steps"])]
    build = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action@"))
    assert build["with"]["context"] == "images/llama-factory"
    assert build["with"]["push"] == "${{ env.PUSH == 'true' }}"
    assert job["env"]["PUSH"] == "${{ startsWith(github.ref, 'refs/tags/v') }}"
    login = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/login-action@"))
    assert login["if"] == "env.PUSH == 'true'" and "secrets." in login["with"]["password"]
    assert "scripts/image_ref.py llamaFactory" in " ".join(str(s.get("run", "")) for s in job["steps"])
    # The reference it pushes is the one every training stage renders.
    from chartkit import helm

    objects = helm.render(helm.Release(values=("values/8b.yaml",), sets=("stages={workspace}",)))
    pod = next(o for o in objects if o["kind"] == "Job")
    assert pod["spec"]["template"]["spec"]["containers"][0]["image"] == image_ref("llamaFactory")
    assert image_ref("llamaFactory", "mirror.example/ml").startswith("mirror.example/ml/")


def write(tmp_path, text: str):
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD_STEP = "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n"


def test_unpinned_actions_and_moving_runners_are_refused(tmp_path):
    path = write(
        tmp_path,
        """\
        on: push
        jobs:
          a:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97
              - uses: helm/kind-action@ef37e7f390d99f746eb8b610417061a60e82a6cc # v1.14.0
        """,
    )
    problems = check_workflows.check([path], schema=False)
    assert any("actions/checkout@v4: pin the action to a full commit SHA" in p for p in problems)
    assert any("say which release the SHA is" in p for p in problems)
    assert any("ubuntu-latest moves" in p for p in problems)
    assert any("setup-python needs an explicit python-version" in p for p in problems)
    assert any("helm/kind-action needs an exact version" in p for p in problems)


def test_duplicate_keys_missing_scripts_and_unpinned_node_images_are_refused(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "e2e.sh").write_text("kind create cluster --image kindest/node:v1.34.0\n")
    job = """\
          a:
            runs-on: ubuntu-24.04
            steps:
              - run: scripts/e2e.sh && scripts/missing.sh
        """
    twice = write(tmp_path, "on: push\njobs:\n" + textwrap.indent(textwrap.dedent(job), "  ") * 2)
    assert any("duplicate key 'a'" in p for p in check_workflows.check([twice], root=tmp_path, schema=False))
    once = write(tmp_path, "on: push\njobs:\n" + textwrap.indent(textwrap.dedent(job), "  "))
    problems = check_workflows.check([once], root=tmp_path, schema=False)
    assert any("scripts/missing.sh, which does not exist" in p for p in problems), problems
    assert any("scripts/e2e.sh, which is not executable" in p for p in problems), problems
    assert any("kindest/node:v1.34.0: pin the kind node image by digest" in p for p in problems), problems


def test_schema_errors_are_reported(tmp_path):
    path = write(
        tmp_path,
        """\
        on: push
        jobs:
          a:
            steps:
        """
        + GOOD_STEP.replace("      ", "          ")
        + "            with_typo: 1\n",
    )
    problems = check_workflows.check([path], root=tmp_path)
    assert any("schema:" in p and "'runs-on' is a required property" in p for p in problems), problems
