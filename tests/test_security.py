"""Safe by default: Pod Security Standards on every pod template the chart
renders, custom resources included (public linters skip those); the exceptions
pinned exactly; no secret material in any rendered object; the upgrade policy
(job names carry a hash of their content)."""

import re
import shutil

import pytest
import yaml

from chartkit import helm
from chartkit.chart import ROOT, STAGES
from harness.testkit import PRESETS, one, pod_templates, rel, render

VALUES = yaml.safe_load((ROOT / "values.yaml").read_text())
MULTI = VALUES["training"]["multiWorkerSecurityContext"]
BASELINE_CAPS = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
CASES = {f"{p} {s}": rel(p, s) for p in PRESETS for s in STAGES}
CASES.update({f"team {s}": rel("8b-2xdp.yaml", s, values=("values/team-example.yaml",)) for s in STAGES})
# LLaMA-Factory's published image runs under the same restricted profile (values/image-upstream.yaml).
CASES.update({f"upstream image {s}": rel("8b-2xdp.yaml", s, values=("values/image-upstream.yaml",)) for s in STAGES})
EXCEPTIONS = {
    "multi-worker sft": rel("8b-2xdp.yaml", "sft", "training.workers=2"),
    "rdma sft": rel("8b.yaml", "sft", "training.rdma.enabled=true"),
    "multi-worker rdma dpo": rel("70b-4xdp.yaml", "dpo", "training.workers=2", "training.rdma.enabled=true"),
}
PREFETCH = list(CASES.values()) + list(EXCEPTIONS.values())


def effective(pod: dict, c: dict, key: str):
    return c.get("securityContext", {}).get(key, pod.get("securityContext", {}).get(key))


def baseline_violations(spec: dict) -> list[str]:
    out = [f"host namespace {k}" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    out += [f"hostPath volume {v['name']}" for v in spec.get("volumes", []) if "hostPath" in v]
    if spec.get("securityContext", {}).get("seccompProfile", {}).get("type") == "Unconfined":
        out.append("pod seccomp Unconfined")
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            out.append(f"{c['name']}: privileged")
        extra = set(sc.get("capabilities", {}).get("add", [])) - BASELINE_CAPS
        if extra:
            out.append(f"{c['name']}: capabilities {sorted(extra)} beyond baseline")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            out.append(f"{c['name']}: hostPort")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{c['name']}: procMount")
        if sc.get("seccompProfile", {}).get("type") == "Unconfined":
            out.append(f"{c['name']}: seccomp Unconfined")
    return out


def restricted_violations(spec: dict) -> list[str]:
    out = baseline_violations(spec)
    out += [
        f"volume {v['name']} of type {sorted(set(v) - {'name'})}"
        for v in spec.get("volumes", [])
        if not (set(v) - {"name"}) <= RESTRICTED_VOLUMES
    ]
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']}: allowPrivilegeEscalation not false")
        if effective(spec, c, "runAsNonRoot") is not True or effective(spec, c, "runAsUser") == 0:
            out.append(f"{c['name']}: may run as root")
        if (effective(spec, c, "seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            out.append(f"{c['name']}: no RuntimeDefault seccomp profile")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            out.append(f"{c['name']}: capabilities not dropped")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{c['name']}: adds {sorted(set(caps['add']) - {'NET_BIND_SERVICE'})}")
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_pod_meets_the_restricted_profile(case):
    problems = []
    for obj, spec, _ in pod_templates(helm.render(CASES[case])):
        problems += [f"{obj['kind']}/{obj['metadata']['name']}: {v}" for v in restricted_violations(spec)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", sorted(EXCEPTIONS))
def test_exceptions_are_exactly_the_documented_ones(case):
    objects = helm.render(EXCEPTIONS[case])
    for _obj, spec, _ in pod_templates(objects):
        (c,) = spec["containers"]
        multi = "multi-worker" in case
        rdma = "rdma" in case
        want = dict(MULTI if multi else VALUES["common"]["containerSecurityContext"])
        if rdma:
            want["capabilities"] = {**want["capabilities"], "add": want["capabilities"].get("add", []) + ["IPC_LOCK"]}
        assert c["securityContext"] == want
        found = restricted_violations(spec)
        assert found, "an exception case must actually leave the restricted profile"
        assert baseline_violations(spec) == (["worker: capabilities ['IPC_LOCK'] beyond baseline"] if rdma else [])
        if rdma:
            assert c["resources"]["limits"]["rdma/rdma_shared_device_a"] == 1


def test_the_checks_catch_a_privileged_pod():
    spec = {
        "containers": [{"name": "x", "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "hostNetwork": True,
    }
    assert len(baseline_violations(spec)) == 4
    assert "x: may run as root" in restricted_violations({"containers": [{"name": "x"}]})


TOKEN = re.compile(
    r"(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|"
    r"ghp_[A-Za-z0-9]{30,}|xox[abp]-[A-Za-z0-9-]{10,})"
)
SECRET_NAME = re.compile(r"(?i)(token|secret|password|passwd|api_?key|access_?key|private_?key|credential)")


def secret_findings(objects) -> list[str]:
    found = []
    for o in objects:
        where = f"{o['kind']}/{o['metadata']['name']}"
        for k, v in (o["metadata"].get("annotations") or {}).items():
            if TOKEN.search(str(v)) or (SECRET_NAME.search(k) and v):
                found.append(f"{where}: annotation {k}")
        for k, v in (o.get("data") or {}).items():
            if TOKEN.search(v):
                found.append(f"{where}: ConfigMap key {k} holds a token")
            if not k.endswith((".yaml", ".yml", ".json")):
                continue  # code (download.py) reads secrets from its environment
            for line in v.splitlines():
                m = re.match(r'\s*"?([\w.-]+)"?\s*[:=]\s*"?([^",]+)', line)
                if m and SECRET_NAME.search(m.group(1)) and m.group(2).strip() not in ("null", "none", "false", ""):
                    found.append(f"{where}: ConfigMap key {k} sets {m.group(1)}")
    for obj, spec, _ in pod_templates(objects):
        for c in spec["containers"]:
            where = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]) and "value" in e:
                    found.append(f"{where}: env {e['name']} has a value")
                if TOKEN.search(str(e.get("value", ""))):
                    found.append(f"{where}: env {e['name']} holds a token")
            argv = " ".join(map(str, c.get("command", []) + c.get("args", [])))
            if TOKEN.search(argv) or re.search(r"--(api-key|token|hf[_-]token)\b", argv):
                found.append(f"{where}: secret on the command line")
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_no_secret_material_in_any_object(stage):
    objects = render("8b.yaml", stage, values=("tests/values/rich.yaml",))
    assert secret_findings(objects) == []


def test_secret_scan_finds_planted_secrets():
    planted = [
        {
            "kind": "ConfigMap",
            "metadata": {"name": "c", "annotations": {"api-token": "x"}},
            "data": {"train.yaml": "hub_token: hf_abcdefghijklmnopqrstuvwxyz123456\n"},
        },
        {
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "args": ["--api-key=abc"], "env": [{"name": "HF_TOKEN", "value": "x"}]}]},
        },
    ]
    assert len(secret_findings(planted)) == 5


@pytest.mark.parametrize("major", helm.MAJORS)
def test_secret_in_extra_env_is_refused(major):
    err = helm.render_error(rel("8b.yaml", "sft", "common.extraEnv.HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz", major=major))
    assert "common.extraEnv.HF_TOKEN" in err and "secretKeyRef" in err


def _names(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.mark.parametrize(
    "stage,kind,change",
    [
        ("sft", "DeepSpeedJob", "sft.numTrainEpochs=2"),
        ("dpo", "DeepSpeedJob", "dpo.loggingSteps=10"),
        ("merge-sft", "Job", "merge.exportSize=4"),
        ("eval", "Job", "eval.numFewshot=0"),
        ("workspace", "Job", "model.revision=v2"),
    ],
)
def test_upgrade_with_changed_settings_makes_a_new_job(stage, kind, change):
    """The upgrade policy: a changed config renames the job (helm upgrade deletes the old one,
    creates the new one; no immutable-field error and no job silently keeping old settings);
    the same settings keep the same name, so an upgrade leaves a finished job alone."""
    before, again = render("8b.yaml", stage), render("8b.yaml", stage, f"stages={{{stage}}}")
    after = render("8b.yaml", stage, change)
    (old,), (same,), (new,) = (_names(x, kind) for x in (before, again, after))
    assert old == same and old != new
    cm_before = {o["metadata"]["name"]: o.get("data") for o in before if o["kind"] == "ConfigMap"}
    cm_after = {o["metadata"]["name"]: o.get("data") for o in after if o["kind"] == "ConfigMap"}
    assert cm_before.keys() == cm_after.keys()  # ConfigMaps keep their names and change in place


def test_chart_version_bump_keeps_finished_jobs(tmp_path):
    """Labels (chart version) are not part of a job's hash: upgrading the chart alone re-runs nothing."""
    copy = tmp_path / "chart"
    shutil.copytree(
        ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", ".tools", ".whl", ".gpu", "tests", "out", "*.egg-info", "__pycache__")
    )
    chart = (copy / "Chart.yaml").read_text()
    (copy / "Chart.yaml").write_text(re.sub(r"^version: .*$", "version: 9.9.9", chart, flags=re.M))
    args = [
        str(helm.helm_path("3")),
        "template",
        "llama31",
        str(copy),
        "-f",
        str(ROOT / "values/8b.yaml"),
        "--set",
        "stages={workspace,sft,merge-sft,dpo,merge-dpo,eval}",
    ]
    bumped = [d for d in yaml.safe_load_all(helm.run(args).stdout) if d]
    original = render("8b.yaml", ("workspace", "sft", "merge-sft", "dpo", "merge-dpo", "eval"))
    jobs = lambda objs: sorted(o["metadata"]["name"] for o in objs if o["kind"] in ("Job", "DeepSpeedJob"))  # noqa: E731
    assert jobs(bumped) == jobs(original)
    assert {o["metadata"]["labels"]["helm.sh/chart"] for o in bumped} == {"llama-factory-9.9.9"}


def test_outputs_are_kept_unless_asked():
    cfg = one(render("8b.yaml", "sft"), "ConfigMap")["data"]["train.yaml"]
    assert "overwrite_output_dir: false" in cfg
