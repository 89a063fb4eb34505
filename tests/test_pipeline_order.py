"""Ordering inside one release (issue 13), the render's half: each stage waits, in its init
container, for the stages of its release that write what it reads (files/launch.py `wait`;
its records and waits are unit-tested in tests/test_launch_records.py). The render tests
derive what each stage reads and writes from the rendered objects themselves (train.yaml,
merge.yaml, lm_eval's and vLLM's arguments, the download plan), not from the chart's path
helper, and check the waits against it."""

import importlib.util
import json
import re

import pytest
import yaml

from chartkit import helm
from chartkit.chart import ROOT, STAGES
from harness.testkit import PRESETS, pod_templates, rel, render

spec = importlib.util.spec_from_file_location("chart_launch_order", ROOT / "files" / "launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)


# ---------------------------------------------------------------- rendered waits

SEVEN = tuple(STAGES)


def io_of(objects, mount="/t9k/mnt"):
    """{component: (reads, writes)} read off the rendered objects."""
    io = {}
    for o in objects:
        comp = o["metadata"]["labels"].get("app.kubernetes.io/component")
        data = o.get("data") or {}
        if o["kind"] == "ConfigMap" and "train.yaml" in data:
            cfg = yaml.safe_load(data["train.yaml"])
            io[comp] = ({cfg["model_name_or_path"]}, {cfg["output_dir"]})
        elif o["kind"] == "ConfigMap" and "merge.yaml" in data:
            cfg = yaml.safe_load(data["merge.yaml"])
            io[comp] = ({cfg["model_name_or_path"], cfg["adapter_name_or_path"]}, {cfg["export_dir"]})
        elif o["kind"] == "ConfigMap" and "download.json" in data:
            io[comp] = (set(), {json.loads(data["download.json"])["model"]["target"]})
        elif o["kind"] == "Job" and comp == "eval":
            args = o["spec"]["template"]["spec"]["containers"][0]["command"]
            model = re.search(r"pretrained=([^,]+)", next(a for a in args if a.startswith("--model_args="))).group(1)
            output = next(a for a in args if a.startswith("--output_path=")).split("=", 1)[1]
            io[comp] = ({model}, {output})
        elif o["kind"] == "Deployment":
            c = o["spec"]["template"]["spec"]["containers"][0]
            reads = {c["args"][0]}
            lora = [a.split("=", 2)[2] for a in c["args"] if a.startswith("--lora-modules=")]
            io[comp] = (reads | set(lora), set())
    return io


def waits_of(objects):
    """{component: {(stage, path, fingerprint)}} from the init containers."""
    out = {}
    for o, pod, _ in pod_templates(objects):
        comp = o["metadata"]["labels"].get("app.kubernetes.io/component")
        for c in pod.get("initContainers", []):
            if c["name"] == "wait-for-inputs":
                specs = [a for a in c["command"] if "@" in a]
                out[comp] = {(s.split("=", 1)[0], s.split("=", 1)[1].rsplit("@", 1)[0], s.rsplit("@", 1)[1]) for s in specs}
    return out


def fingerprints(objects):
    """{component: fingerprint} of the producers, from their pod annotation; checked against the name."""
    fps = {}
    for o, _, meta in pod_templates(objects):
        fp = ((meta or {}).get("annotations") or {}).get("llama-factory/fingerprint")
        if fp:
            assert o["metadata"]["name"].endswith("-" + fp), o["metadata"]["name"]
            fps[o["metadata"]["labels"]["app.kubernetes.io/component"]] = fp
    return fps


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize(
    "stages", [SEVEN, ("sft", "merge-sft", "dpo"), ("merge-sft", "dpo", "merge-dpo", "serve"), ("workspace", "sft", "eval"), ("sft", "dpo")]
)
def test_each_stage_waits_for_exactly_the_stages_of_its_release_that_write_what_it_reads(preset, stages):
    # Full fine-tuning: DPO reads the SFT output itself (8B only; a 70B full run does not fit).
    sets = (
        ("training.method=full", "training.deepspeed.zeroStage=3", "common.gpu.memoryGiB=141", "training.gpusPerWorker=8")
        if preset.startswith("8b") and stages == ("sft", "dpo")
        else ()
    )
    objs = render(preset, stages, *sets)
    io, waits, fps = io_of(objs), waits_of(objs), fingerprints(objs)
    assert set(io) == set(stages)
    for consumer, (reads, _) in io.items():
        expected = {
            (producer, path, fps[producer])
            for path in reads
            for producer, (_, writes) in io.items()
            if producer != consumer and path in writes
        }
        assert waits.get(consumer, set()) == expected, consumer


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("stage", STAGES)
def test_a_release_of_one_stage_waits_for_nothing(preset, stage):
    objs = render(preset, stage)
    assert waits_of(objs) == {}
    for o in objs:
        if o["kind"] == "Job":
            assert "podFailurePolicy" not in o["spec"]


def test_a_waiting_job_gets_the_wait_in_its_deadline_and_fails_at_once_when_the_wait_cannot_succeed():
    single = {o["metadata"]["labels"]["app.kubernetes.io/component"]: o for o in render("8b.yaml", "merge-sft") if o["kind"] == "Job"}
    objs = render("8b.yaml", SEVEN, "pipeline.waitTimeoutSeconds=7200")
    job = next(o for o in objs if o["kind"] == "Job" and o["metadata"]["labels"]["app.kubernetes.io/component"] == "merge-sft")
    assert job["spec"]["activeDeadlineSeconds"] == single["merge-sft"]["spec"]["activeDeadlineSeconds"] + 7200
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"] == {
        "containerName": "wait-for-inputs",
        "operator": "In",
        "values": [launch.WAIT_FAILED, launch.WAIT_TIMEOUT],
    }
    init = job["spec"]["template"]["spec"]["initContainers"][0]
    assert "--timeout=7200" in init["command"] and "--interval=30" in init["command"]


def test_a_change_upstream_renames_every_stage_after_it_and_nothing_before():
    base = {o["metadata"]["name"] for o in render("8b.yaml", SEVEN)}
    changed = render("8b.yaml", SEVEN, "merge.exportSize=7")
    renamed = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]
        for o in changed
        if o["kind"] in ("Job", "DeepSpeedJob") and o["metadata"]["name"] not in base
    }
    assert renamed == {"merge-sft", "dpo", "merge-dpo", "eval"}
    serve_pods = [p for o, p, _ in pod_templates(changed) if o["kind"] == "Deployment"]
    old_pods = [p for o, p, _ in pod_templates(render("8b.yaml", SEVEN)) if o["kind"] == "Deployment"]
    assert serve_pods != old_pods  # the server waits for the new merge-dpo


@pytest.mark.parametrize("major", helm.MAJORS)
def test_the_render_of_a_pipeline_is_deterministic(major):
    """GitOps: the same values give the same manifests, byte for byte, every time."""
    r = rel("8b-2xdp.yaml", SEVEN, major=major)
    first = helm.run(r.args()).stdout
    assert first and all(helm.run(r.args()).stdout == first for _ in range(2))


def test_wait_containers_are_small_read_only_and_restricted():
    objs = render("8b-2xdp.yaml", SEVEN)
    for _o, pod, _ in pod_templates(objs):
        for c in pod.get("initContainers", []):
            assert c["resources"]["limits"] and c["resources"]["requests"]
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert all(m.get("readOnly") for m in c["volumeMounts"])
            main = pod["containers"][0]
            assert c["image"] == main["image"]


@pytest.mark.parametrize(
    "value,field",
    [
        ("pipeline.waitTimeoutSeconds=0", "waitTimeoutSeconds"),
        ("pipeline.waitTimeoutSeconds=soon", "waitTimeoutSeconds"),
        ("pipeline.waitIntervalSeconds=0", "waitIntervalSeconds"),
    ],
)
def test_bad_pipeline_values_are_refused_naming_the_field(value, field):
    with pytest.raises(helm.RenderError) as e:
        render("8b.yaml", SEVEN, value)
    assert field in e.value.stderr


def notes(*sets: str) -> str:
    """The NOTES of an install (Helm 4 renders them offline with --dry-run=client)."""
    args = [helm.helm_path("4"), "install", "llama31", str(ROOT), "--dry-run=client", "-f", str(ROOT / "values/8b.yaml")]
    for s in sets:
        args += ["--set", s]
    proc = helm.run(args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("NOTES:", 1)[1]


def test_the_notes_of_a_pipeline_show_its_chain_and_no_next_step_inside_it():
    text = notes("stages={" + ",".join(SEVEN) + "}")
    waits = waits_of(render("8b.yaml", SEVEN))
    for stage in SEVEN:
        line = next(l for l in text.splitlines() if l.strip().startswith(stage + " ") and ("waits for" in l or "starts at once" in l))
        producers = sorted({w[0] for w in waits.get(stage, ())})
        if producers:
            assert sorted(line.split("waits for ", 1)[1].split(";")[0].split(", ")) == producers, line
        else:
            assert "starts at once" in line, line
    assert "logs <pod> -c wait-for-inputs" in text
    assert "Next:" not in text.split("== eval ==")[0]  # every next stage of these is in the release
    one_stage = notes("stages={sft}")
    assert "Pipeline:" not in one_stage and "Next:" in one_stage
