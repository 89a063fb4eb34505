"""Every "Next" command the NOTES print is one a user can paste: rendered offline (Helm 4's
`install --dry-run=client` prints the NOTES without a cluster), each Next command is taken
from them, its placeholders filled with the release's own values, and rendered under both Helm
majors: it must pass the schema and the rules and render the stage it names."""

import functools
import re
import shlex
from concurrent.futures import ThreadPoolExecutor

import pytest

from chartkit import helm
from chartkit.chart import ROOT, STAGES
from harness.testkit import PRESETS

FULL = ("training.method=full", "training.gpusPerWorker=4", "training.deepspeed.zeroStage=3", "common.gpu.memoryGiB=80")
# (values files, --set arguments) of the releases whose NOTES are read.
CASES = {f"{p}/{s}": ((f"values/{p}",), (f"stages={{{s}}}",)) for p in PRESETS for s in STAGES}
CASES.update({f"full/{s}": (("values/8b.yaml",), (f"stages={{{s}}}", *FULL)) for s in ("sft", "dpo", "eval", "serve")})
CASES["whole pipeline"] = (("values/8b-2xdp.yaml",), ("stages={" + ",".join(STAGES) + "}",))

NEXT = re.compile(
    r"^\s*(?:Next:|or: )\s+helm install <name> <chart> <same -f files and --set> (.*?)"
    r"(?: once this stage has finished\.)?$",
    re.M,
)


@functools.cache
def notes(case: str) -> str:
    files, sets = CASES[case]
    args = [helm.helm_path("4"), "install", "--dry-run=client", "notes", str(ROOT)]
    for f in files:
        args += ["-f", str(ROOT / f)]
    for s in sets:
        args += ["--set", s]
    proc = helm.run(args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("NOTES:", 1)[1]


def next_stages(case: str) -> list[list[str]]:
    """The --set arguments of each Next command of a case's NOTES."""
    out = []
    for tail in NEXT.findall(notes(case)):
        args = shlex.split(tail)
        assert len(args) % 2 == 0 and all(a == "--set" for a in args[::2]), tail
        out.append(args[1::2])
    return out


@pytest.fixture(scope="module", autouse=True)
def prefetch():
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(notes, CASES))


@pytest.mark.parametrize("case", CASES)
def test_every_next_command_renders_the_stage_it_names(case):
    files, sets = CASES[case]
    for extra in next_stages(case):
        stage = re.fullmatch(r"stages=\{([a-z-]+)\}", extra[-1]).group(1)
        for major in helm.MAJORS:
            objects = helm.render(helm.Release(values=files, sets=sets + tuple(extra), major=major, name="next"))
            components = {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in objects}
            assert stage in components and all(c.startswith(stage) for c in components), (case, major, components)


@pytest.mark.parametrize(
    "case,want",
    [
        ("8b.yaml/workspace", [["stages={sft}"]]),
        ("8b.yaml/sft", [["stages={merge-sft}"]]),
        ("8b.yaml/merge-sft", [["stages={dpo}"]]),
        ("8b.yaml/dpo", [["stages={merge-dpo}"]]),
        # Once "stages={eval (or serve)}", which no shell or schema takes.
        ("8b.yaml/merge-dpo", [["stages={eval}"], ["stages={serve}"]]),
        ("8b.yaml/eval", [["stages={serve}"]]),
        ("8b.yaml/serve", []),
        # Full fine-tuning writes whole models: no merge stage to suggest (the chart refuses one).
        ("full/sft", [["stages={dpo}"]]),
        ("full/dpo", [["stages={eval}"], ["stages={serve}"]]),
        ("whole pipeline", []),
    ],
)
def test_next_follows_the_pipeline(case, want):
    assert next_stages(case) == want
