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


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("major", helm.MAJORS)
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_values_fail_naming_the_field(path, major):
    expects = header(path, "expect")
    assert expects, f"{path.name} has no '# expect:' line"
    preset = header(path, "preset")
    files = tuple(f"values/{p}" for p in preset) + (str(path.relative_to(ROOT)),)
    err = helm.render_error(helm.Release(values=files, major=major))
    for e in expects:
        assert e in err, f"{path.name}: {e!r} not in:\n{err}"
