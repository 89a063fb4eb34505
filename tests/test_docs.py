"""The README stays true: its two commands are CI's, its helm commands render,
its preset table matches the presets, and its values table is current."""

import re
import shlex
import subprocess
import sys

import pytest
import yaml

from chartkit import helm, pipeline
from chartkit.chart import ROOT
from chartkit.pipeline import pod_spec
from harness.testkit import one, render

README = (ROOT / "README.md").read_text()


def test_values_table_and_schema_descriptions_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/values_doc.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_first_lines_are_the_two_commands_and_ci_runs_the_test_one():
    first = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first.strip().splitlines()]
    assert commands == ["make render", "make test"]
    ci = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd ", "export "))
    ]
    assert ci[-1].strip() == "make test"


HELM_COMMANDS = [line for line in README.splitlines() if line.startswith("helm install ")]


@pytest.mark.parametrize("line", HELM_COMMANDS)
def test_readme_helm_commands_render(line):
    args = shlex.split(line.split("#")[0])
    assert args[:2] == ["helm", "install"] and args[3] == "."
    for major in helm.MAJORS:
        proc = helm.run([helm.helm_path(major), "template", *args[2:]])
        assert proc.returncode == 0, f"helm {major}: {line}\n{proc.stderr}"


ROWS = re.findall(r"^\| [^|]+ \| `([^`]+)` \| `(sft|dpo)` \| (\d+) × (\d+) GB \| (\d+) Gi \| (\d+) Gi \|", README, re.M)


def test_preset_table_covers_the_seed_rows():
    assert len(ROWS) == 8
    assert {(p, s) for p, s, *_ in ROWS} >= {
        ("8b.yaml", "sft"),
        ("8b-2xdp.yaml", "sft"),
        ("8b.yaml", "dpo"),
        ("8b-2xdp.yaml", "dpo"),
        ("70b-4xdp.yaml", "sft"),
        ("70b-4xdp.yaml", "dpo"),
    }


@pytest.mark.parametrize("preset,stage,gpus,card,memory,shm", ROWS)
def test_preset_table_matches_the_render(preset, stage, gpus, card, memory, shm):
    objects = render(preset, stage)
    io = pipeline.stage_io(stage, objects)
    spec = pod_spec(one(objects, "DeepSpeedJob"))
    assert io.gpus == int(gpus)
    assert spec["containers"][0]["resources"]["limits"]["memory"] == f"{memory}Gi"
    assert [v for v in spec["volumes"] if v["name"] == "dshm"][0]["emptyDir"]["sizeLimit"] == f"{shm}Gi"
    assert yaml.safe_load((ROOT / "values" / preset).read_text())["common"]["gpu"]["memoryGiB"] == int(card)


def test_every_schema_description_is_its_own_keys_comment():
    """values_doc reuses one node for every boolean field; each field must still get the
    description of its own `# --` comment (merge.exportLegacyFormat once carried serving.lora's)."""
    import json as _json
    import sys as _sys

    _sys.path.insert(0, str(ROOT / "scripts"))
    import values_doc

    text = (ROOT / "values.yaml").read_text()
    schema = _json.loads((ROOT / "values.schema.json").read_text())
    for path, doc in values_doc.documented_keys(text).items():
        assert values_doc.schema_node(schema, path).get("description") == doc, path


def test_readme_gitops_application_renders_the_pipeline_it_shows(tmp_path):
    """The Argo CD Application of *GitOps*: its values files and values render, under both Helm
    majors, a release of the stages it lists, each waiting for its producers."""
    block = README.split("#### GitOps", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    app = yaml.safe_load(block)
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source = app["spec"]["source"]["helm"]
    values = tmp_path / "values.yaml"
    values.write_text(source["values"])
    for major in helm.MAJORS:
        args = [helm.helm_path(major), "template", app["metadata"]["name"], str(ROOT)]
        for f in source["valueFiles"]:
            args += ["-f", str(ROOT / f)]
        proc = helm.run([*args, "-f", str(values)])
        assert proc.returncode == 0, proc.stderr
        objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
        components = {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in objs}
        assert set(yaml.safe_load(source["values"])["stages"]) <= components
        assert "wait-for-inputs" in proc.stdout


USER_SECTIONS = ["## Before you install", "## Install, upgrade, uninstall", "## The pipeline", "## Troubleshooting"]


def test_readme_opens_with_what_a_chart_user_needs():
    """After the two commands, the README is for chart users: prerequisites (T9k, GPUs, storage
    class, token, image), install, upgrade and uninstall come before the pipeline; the harness
    and the GPU measurements live in their own documents, which it links."""
    at = [README.index(h) for h in USER_SECTIONS]
    assert at == sorted(at)
    before = README[at[0] : at[1]]
    for need in ("TensorStack", "GPUs", "storage class", "Hugging Face token", "training image", "existingClaim"):
        assert need in before, need
    install = README[at[1] : at[2]]
    assert "**Upgrade**" in install and "**Uninstall**" in install and "resource-policy: keep" in install
    for doc in ("tests/README.md", "docs/gpu-measurements.md", "docs/gpu-card-defaults.md"):
        assert f"]({doc})" in README and (ROOT / doc).is_file(), doc
    assert "## Tests" not in README and "### Measured on a GPU" not in README
    tiers = (ROOT / "tests/README.md").read_text()
    assert "| tier | files | checks |" in tiers and "make test" in tiers


def test_every_readme_link_to_a_file_exists():
    for doc in (ROOT / "README.md", ROOT / "tests/README.md", ROOT / "docs/gpu-measurements.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def test_readme_says_the_image_carries_lm_eval():
    """The eval stage's harness is in the chart's image (images/llama-factory pins it), and the
    README says so, not the opposite; the published image's section says it lacks it."""
    assert re.search(r"^lm-eval==", (ROOT / "images/llama-factory/requirements.txt").read_text(), re.M)
    assert "lm-evaluation-harness at the pins" in README
    assert not re.search(r"(lacks|without|no) `?lm[_-]eval`?", README.split("## LLaMA-Factory's published image")[0])


HELM_UPGRADES = re.findall(r"`(helm upgrade [^`]+)`", README)


@pytest.mark.parametrize("line", HELM_UPGRADES)
def test_readme_helm_upgrade_commands_render(line):
    args = shlex.split(line)
    assert args[:2] == ["helm", "upgrade"] and args[3] == "."
    for major in helm.MAJORS:
        proc = helm.run([helm.helm_path(major), "template", *args[2:]])
        assert proc.returncode == 0, f"helm {major}: {line}\n{proc.stderr}"
