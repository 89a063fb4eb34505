"""checkov (a public Kubernetes linter) over the render of every preset × stage:
no failed check apart from tests/checkov-skips.yaml, whose entries each name the
check, the object and the reason, and each still match a finding.

One checkov process scans a directory holding one file per preset × stage (the
helm output as is) plus, for the stages whose pods come from custom resources
(DeepSpeedJob, Notebook: checkov has no checks for those kinds), a file of the
same pods as plain Pods, so that the training and Notebook pods are checked too.
A finding names its object as `<kind>/<app.kubernetes.io/component>` (the kind of
the rendered object, the CR for a pod template), free of the release name and the
content hashes of job names, and skip entries match it with a glob.

checkov's pins cannot share .venv (packaging<24 against pytest's >=24,
python-dateutil<3 via boto3 against kubernetes' >=3, networkx<2.7 against the
peer tier), so it lives in its own virtual environment under .tools/,
installed on first use like Helm (`python tests/test_checkov.py --install` does
it up front). It runs offline: --skip-download (no Prisma Cloud metadata) and
CKV_SKIP_PACKAGE_UPDATE_CHECK (otherwise it asks pypi.org for a newer checkov
whenever its cache is cold)."""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

try:
    from chartkit import helm
    from chartkit.chart import ROOT, STAGES
    from harness.testkit import PRESETS, pod_templates, rel
except ImportError:  # run as a script (--install) without pytest's pythonpath
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from chartkit import helm
    from chartkit.chart import ROOT, STAGES
    from harness.testkit import PRESETS, pod_templates, rel

CHECKOV_VERSION = "3.3.30"
TOOL = ROOT / ".tools" / f"checkov-{CHECKOV_VERSION}"
SKIPS_FILE = Path(__file__).with_name("checkov-skips.yaml")
# Offline: no update check against pypi.org, no platform mapping download.
OFFLINE_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
CASES = {(p, s): rel(p, s) for p in PRESETS for s in STAGES}
PREFETCH = list(CASES.values())
CR_KINDS = ("DeepSpeedJob", "Notebook")
COMPONENT = "app.kubernetes.io/component"


def install() -> Path:
    """checkov's executable, installed into .tools/checkov-<version> when absent
    (once, under a lock, so that parallel workers do not race)."""
    exe, done = TOOL / "bin" / "checkov", TOOL / ".installed"
    if done.exists():
        return exe
    TOOL.parent.mkdir(parents=True, exist_ok=True)
    with open(TOOL.parent / f"{TOOL.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(TOOL, ignore_errors=True)
            for cmd in (
                [sys.executable, "-m", "venv", str(TOOL)],
                [
                    str(TOOL / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    f"checkov=={CHECKOV_VERSION}",
                ],
            ):
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"installing checkov failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
            done.touch()
    return exe


@dataclass(frozen=True)
class Finding:
    check: str
    object: str  # <kind>/<component label>, e.g. Job/merge-sft
    file: str  # <preset>--<stage>.yaml, or .pods.yaml for the pods of custom resources
    name: str  # the rendered object's name
    title: str  # checkov's name of the check


def write_renders(out: Path) -> dict[str, list[tuple[str, str, str, bool]]]:
    """One file per preset × stage (and one of CR pods); returns, per file, the
    (name, kind reported, component, whether it makes pods) of each object in it."""
    index = {}
    for (preset, stage), release in CASES.items():
        base = f"{preset.removesuffix('.yaml')}--{stage}"
        objects = helm.render(release)
        (out / f"{base}.yaml").write_text(helm.run_template(release))
        owners = [o for o, _, _ in pod_templates(objects)]
        index[f"{base}.yaml"] = [entry(o, any(o is w for w in owners)) for o in objects]
        pods = []
        for o, spec, meta in pod_templates(objects):
            if o["kind"] in CR_KINDS:
                labels = (meta or {}).get("labels") or o["metadata"].get("labels", {})
                pods.append(
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": o["metadata"]["name"], "labels": labels}, "spec": spec}
                )
                index.setdefault(f"{base}.pods.yaml", []).append(entry(o, True))
        if pods:
            (out / f"{base}.pods.yaml").write_text(yaml.safe_dump_all(pods, sort_keys=False))
    return index


def entry(o: dict, has_pods: bool) -> tuple[str, str, str, bool]:
    return o["metadata"]["name"], o["kind"], o["metadata"].get("labels", {}).get(COMPONENT, ""), has_pods


def object_of(resource: str, objects: list[tuple[str, str, str, bool]]) -> tuple[str, str]:
    """(object, name) of a checkov resource `Kind.namespace.name`. Graph checks
    name the pod of a Job or Deployment `Pod.namespace.<name>.<labels>`: that is
    its Job or Deployment (not the Service of the same name)."""
    kind, _, rest = resource.split(".", 2)
    matches = [o for o in objects if rest == o[0] or rest.startswith(o[0] + ".")]
    if not matches:
        return f"{kind}/?{rest}", rest
    name, reported, component, _ = max(matches, key=lambda o: (len(o[0]), o[1] == kind, kind == "Pod" and o[3]))
    return f"{reported}/{component or name}", name


def load_skips() -> list[dict]:
    return yaml.safe_load(SKIPS_FILE.read_text()) or []


def skipped(finding: Finding, skips: list[dict]) -> bool:
    return any(
        s.get("check") == finding.check and fnmatch.fnmatchcase(finding.object, str(s.get("object"))) for s in skips if isinstance(s, dict)
    )


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """(findings, checkov's summary, objects per file) of one checkov run over every render."""
    try:
        exe = install()
    except RuntimeError as e:
        pytest.fail(str(e))
    out = tmp_path_factory.mktemp("checkov")
    renders = out / "renders"
    renders.mkdir()
    index = write_renders(renders)
    proc = subprocess.run(
        [str(exe), "-d", str(renders), "--framework", "kubernetes", "--skip-download", "--output", "json", "--quiet"],
        capture_output=True,
        text=True,
        cwd=out,
        env={**os.environ, **OFFLINE_ENV},
    )
    assert proc.returncode in (0, 1), f"checkov exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    assert isinstance(report, dict) and report.get("check_type") == "kubernetes", proc.stdout[:2000]
    findings = []
    for r in report.get("results", {}).get("failed_checks", []):
        file = r["file_path"].lstrip("/")
        obj, name = object_of(r["resource"], index.get(file, []))
        findings.append(Finding(r["check_id"], obj, file, name, r["check_name"]))
    return findings, report["summary"], index


def test_checkov_reads_every_object(scan):
    _, summary, index = scan
    assert summary["checkov_version"] == CHECKOV_VERSION
    assert summary["parsing_errors"] == 0, summary
    # resource_count counts every object of every file (plus the pods of Jobs and Deployments).
    assert summary["resource_count"] >= sum(map(len, index.values())), summary


def test_no_finding_outside_the_skip_list(scan):
    findings, _, _ = scan
    skips = load_skips()
    new = defaultdict(set)
    for f in findings:
        if not skipped(f, skips):
            new[f.check, f.object, f.title].add(f"{f.file} ({f.name})")
    if new:
        pytest.fail(
            f"{sum(map(len, new.values()))} checkov findings not in {SKIPS_FILE.name} (fix the chart, or add "
            "an entry with check, object and reason):\n"
            + "\n".join(f"{c} {o}: {t}\n    " + "\n    ".join(sorted(files)) for (c, o, t), files in sorted(new.items())),
            pytrace=False,
        )


def test_every_skip_still_applies(scan):
    findings, _, _ = scan
    stale = [s for s in load_skips() if isinstance(s, dict) and not any(skipped(f, [s]) for f in findings)]
    if stale:
        pytest.fail(
            f"entries of {SKIPS_FILE.name} that match no finding any more (remove them):\n"
            + "\n".join(f"{s.get('check')} {s.get('object')}" for s in stale),
            pytrace=False,
        )


def test_skip_file_is_well_formed():
    skips = load_skips()
    assert isinstance(skips, list) and skips, f"{SKIPS_FILE.name}: a list of entries"
    problems, seen = [], set()
    for i, s in enumerate(skips):
        where = f"entry {i + 1} ({s.get('check') if isinstance(s, dict) else s})"
        if not isinstance(s, dict) or set(s) != {"check", "object", "reason"}:
            problems.append(f"{where}: keys must be exactly check, object, reason")
            continue
        if not re.fullmatch(r"CKV2?_K8S_\d+", str(s["check"])):
            problems.append(f"{where}: check {s['check']!r} is not a checkov Kubernetes check id")
        if not re.fullmatch(r"(\*|[A-Z][A-Za-z]+)/[a-z0-9*?\[\]-]+", str(s["object"])):
            problems.append(f"{where}: object {s['object']!r} is not <Kind or *>/<component glob>")
        if not isinstance(s["reason"], str) or not s["reason"].strip() or "\n" in s["reason"].strip():
            problems.append(f"{where}: reason must be one non-empty line")
        key = (str(s["check"]), str(s["object"]))
        if key in seen:
            problems.append(f"{where}: duplicate of an earlier entry")
        seen.add(key)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


if __name__ == "__main__":
    if sys.argv[1:] == ["--install"]:
        print(install())
    else:
        sys.exit("usage: python tests/test_checkov.py --install")
