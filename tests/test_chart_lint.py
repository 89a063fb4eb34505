"""chart-testing's lint rules, offline (scripts/chart_lint.py, which CI also runs): yamllint with
ct's configuration, Chart.yaml against ct's chart schema and Artifact Hub's metadata, and the
version bump of a changed chart."""

import subprocess

import chart_lint
import pytest
import yaml

from chartkit.chart import ROOT

CHART = yaml.safe_load((ROOT / "Chart.yaml").read_text())
VALUES = yaml.safe_load((ROOT / "values.yaml").read_text())


def test_the_chart_passes():
    assert chart_lint.yamllint_problems() == []
    assert chart_lint.chart_problems(CHART) == []
    assert (ROOT / "LICENSE").read_text().split()[:3] == ["Apache", "License", "Version"]
    assert CHART["annotations"]["artifacthub.io/license"] == "Apache-2.0"


def test_yamllint_config_is_cts_and_catches_what_ct_would(tmp_path):
    (tmp_path / "ci").mkdir()
    (tmp_path / "Chart.yaml").write_text("name: x \nname: y\n")  # trailing space, duplicate key
    (tmp_path / "values.yaml").write_text("a: {b: 1}\n")
    problems = chart_lint.yamllint_problems(tmp_path)
    assert any("(trailing-spaces)" in p for p in problems) and any("(key-duplicates)" in p for p in problems)


@pytest.mark.parametrize("drop", ["maintainers", "home", "icon", "sources"])
def test_chart_metadata_is_required(drop):
    chart = {k: v for k, v in CHART.items() if k != drop}
    assert any(drop in p for p in chart_lint.chart_problems(chart))


def test_chart_schema_refuses_unknown_keys_and_bad_types():
    problems = chart_lint.chart_problems({**CHART, "maintainer": [], "version": 1, "maintainers": [{"email": "a"}]})
    assert len(problems) == 3, problems


def test_artifact_hub_images_are_the_defaults():
    listed = {i["image"] for i in yaml.safe_load(CHART["annotations"]["artifacthub.io/images"])}
    want = {f"{i['registry']}/{i['repository']}:{i['tag']}" for i in VALUES["images"].values()}
    assert listed == want


@pytest.mark.parametrize(
    "path,ignored",
    [
        ("templates/NOTES.txt", False),
        ("values.yaml", False),
        ("files/models.yaml", False),
        ("README.md", False),
        ("tests/test_docs.py", True),
        ("scripts/render.py", True),
        ("docs/gpu-card-defaults.md", True),
        ("ci/lintconf.yaml", True),
        (".github/workflows/ci.yaml", True),
        ("Makefile", True),
        ("scripts/__pycache__/x.pyc", True),
    ],
)
def test_helmignore_matching(path, ignored):
    patterns = [ln.strip() for ln in (ROOT / ".helmignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert chart_lint.helmignored(path, patterns) is ignored


def test_version_bump(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / ".helmignore").write_text("/tests/\n")
    (tmp_path / "Chart.yaml").write_text("version: 0.1.0\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "a.yaml").write_text("a: 1\n")
    (tmp_path / "tests").mkdir()
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    (tmp_path / "tests" / "t.py").write_text("x = 1\n")
    assert chart_lint.version_bump_problems("main", tmp_path) == []  # the harness is not the chart
    (tmp_path / "templates" / "a.yaml").write_text("a: 2\n")
    problems = chart_lint.version_bump_problems("main", tmp_path)
    assert len(problems) == 1 and "0.1.0 is not above 0.1.0" in problems[0] and "templates/a.yaml" in problems[0]
    (tmp_path / "Chart.yaml").write_text("version: 0.1.1\n")
    assert chart_lint.version_bump_problems("main", tmp_path) == []
    (tmp_path / "Chart.yaml").write_text("version: 0.1.1-rc.1\n")
    assert chart_lint.version_bump_problems("main", tmp_path) == []
    (tmp_path / "Chart.yaml").write_text("version: 0.0.9\n")
    assert chart_lint.version_bump_problems("main", tmp_path)


def test_ci_installs_the_pinned_linters():
    import re

    workflow = (ROOT / ".github/workflows/ci.yaml").read_text()
    step = re.search(r"pip install --quiet (PyYAML==\S+ jsonschema==\S+ yamllint==\S+)", workflow).group(1).split()
    pyproject = (ROOT / "pyproject.toml").read_text()
    for pin in step:
        assert f'"{pin}"' in pyproject, pin
    assert "scripts/chart_lint.py --base" in workflow
