"""The disk cache of renders (chartkit.helm.template): a hit is what Helm
prints, and the key changes with everything the output depends on."""

import shutil
import subprocess

from chartkit import helm
from chartkit.chart import ROOT


def _copy_chart(tmp_path):
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, tmp_path / f)
    return tmp_path


def test_a_cached_render_is_what_helm_prints(monkeypatch):
    release = helm.Release(values=("values/8b.yaml",), sets=("stages={sft,serve}",), major="4")
    cached = helm.template(release)  # from the disk cache when an earlier run wrote it
    fresh = helm.run(release.args())
    assert (cached.returncode, cached.stdout, cached.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert helm.cache_key(release) is not None
    monkeypatch.setenv("HARNESS_RENDER_CACHE", "0")
    assert helm.cache_key(release) is None


def digest(chart):
    """The chart's digest as a new process would take it."""
    helm._archive.cache_clear()
    return helm.chart_digest(chart)


def test_the_key_follows_the_chart_files_helm_loads(tmp_path):
    chart = _copy_chart(tmp_path)
    before = digest(chart)
    assert before and before == digest(chart)
    (chart / "tests" / "test_x.py").write_text("# not part of the chart\n")
    (chart / "README.md.orig").write_text("ignored by .helmignore\n")
    assert digest(chart) == before
    # Helm writes Chart.yaml into the archive from its parsed fields: a comment is not a change there.
    for f, edit, changes in (
        ("templates/_names.tpl", lambda t: t + "\n{{/* changed */}}\n", True),
        ("files/launch.py", lambda t: t + "\n# changed\n", True),
        ("values.yaml", lambda t: t + "\n# changed\n", True),
        ("Chart.yaml", lambda t: t.replace("\nversion: ", "\nversion: 9"), True),
        ("Chart.yaml", lambda t: t + "\n# a comment\n", False),
    ):
        text = (chart / f).read_text()
        (chart / f).write_text(edit(text))
        assert (digest(chart) != before) == changes, f"{f}: {'not ' * changes}part of the key"
        (chart / f).write_text(text)
    assert digest(chart) == before


def test_the_key_follows_values_files_and_arguments(tmp_path):
    v = tmp_path / "v.yaml"
    v.write_text("run: a\n")
    a = helm.cache_key(helm.Release(values=("values/8b.yaml", str(v))))
    v.write_text("run: b\n")
    b = helm.cache_key(helm.Release(values=("values/8b.yaml", str(v))))
    assert a != b
    assert helm.cache_key(helm.Release(values=("values/8b.yaml",), major="3")) != helm.cache_key(
        helm.Release(values=("values/8b.yaml",), major="4")
    )
    assert helm.cache_key(helm.Release(values=("values/8b.yaml",), name="x")) != helm.cache_key(
        helm.Release(values=("values/8b.yaml",), name="y")
    )


def test_an_edit_during_a_run_turns_the_cache_off(tmp_path):
    chart = _copy_chart(tmp_path)
    helm._archive.cache_clear()
    assert helm.chart_digest(chart)
    # What a run creates: out/ at the root, __pycache__/ under files/ (tests import launch.py).
    (chart / "out" / "render-cache").mkdir(parents=True)
    (chart / "files" / "__pycache__").mkdir()
    assert helm.chart_digest(chart), "folders a run creates turned the cache off"
    path = chart / "files" / "launch.py"
    path.write_text(path.read_text() + "\n# edited\n")
    assert helm.chart_digest(chart) is None, "an edited file kept the old digest"
    helm._archive.cache_clear()


def test_the_package_holds_only_the_chart(tmp_path):
    """What `helm package` archives (and the render key digests): the chart's own files, never a
    tool's cache or the harness, even after the harness's tools ran in the checkout (ruff's cache
    was archived, so a lint during a test run turned the render cache off)."""
    chart = _copy_chart(tmp_path)
    for junk in (
        ".ruff_cache/0/x",
        ".mypy_cache/x",
        ".pytest_cache/v/x",
        ".hypothesis/x",
        "files/__pycache__/launch.pyc",
        "out/render-cache/x.json",
        ".venv/bin/x",
        ".tools/bin/x",
        "carry/x.whl",
        "docs/x.md",
        "tests/x.py",
    ):
        (chart / junk).parent.mkdir(parents=True, exist_ok=True)
        (chart / junk).write_text("not the chart\n")
    helm._archive.cache_clear()
    names = helm._archive(chart)[1]
    helm._archive.cache_clear()
    top = {n.split("/", 1)[0] + ("/" if "/" in n else "") for n in names}
    assert top == {
        ".helmignore",
        "Chart.yaml",
        "LICENSE",
        "README.md",
        "values.yaml",
        "values.schema.json",
        "templates/",
        "files/",
        "values/",
    }, sorted(names)
