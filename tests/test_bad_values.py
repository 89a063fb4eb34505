"""Tier 4: a corpus of invalid values files (tests/bad_values/). Each must fail
`helm template` with both Helm majors, with every `# expect:` text of its
header in the error (the field it names), and never render."""

import re

import pytest

from chartkit import helm
from chartkit.chart import ROOT

CORPUS = sorted((ROOT / "tests/bad_values").glob("*.yaml"))


def header(path, key):
    return re.findall(rf"^# {key}: (.*)$", path.read_text(), re.M)


def release(path, major):
    files = tuple(f"values/{p}" for p in header(path, "preset")) + (str(path.relative_to(ROOT)),)
    return helm.Release(values=files, major=major)


PREFETCH = [release(p, m) for p in CORPUS for m in helm.MAJORS]


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("major", helm.MAJORS)
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_values_fail_naming_the_field(path, major):
    expects = header(path, "expect")
    assert expects, f"{path.name} has no '# expect:' line"
    err = helm.render_error(release(path, major))
    for e in expects:
        assert e in err, f"{path.name}: {e!r} not in:\n{err}"
    if "llama-factory: invalid values" in err:
        assert "Fix:" in err, f"{path.name}: a cross-field error must say how to fix it"


@pytest.mark.parametrize("major", helm.MAJORS)
def test_every_broken_rule_is_reported_at_once(major):
    err = helm.render_error(
        helm.Release(
            values=("values/70b-4xdp.yaml",),
            major=major,
            sets=(
                "stages={sft,merge-sft,serve}",
                "common.gpu.memoryGiB=20",
                "training.preprocessingNumWorkers=64",
                "serving.tensorParallelSize=3",
                "merge.resources.limits.memory=64Gi",
                "merge.resources.requests.memory=64Gi",
            ),
        )
    )
    for field in (
        "training.deepspeed.zeroStage",
        "training.preprocessingNumWorkers",
        "serving.tensorParallelSize",
        "merge.resources.limits.memory",
    ):
        assert field in err
