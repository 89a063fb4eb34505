"""Cluster tier: what only a control plane with its controllers answers.

- A finished Job survives a no-op `helm upgrade`; a changed value replaces it.
- `helm uninstall` leaves no pod behind (the garbage collector deletes the Jobs' pods).
- The original example's hand-made PVC named `llama-factory`: what a plain install does with
  it, and that `storage.existingClaim` adopts it untouched.
- `helm template` output applied twice with server-side apply (what a GitOps controller does):
  the second apply changes nothing.

Job pods run on kwok's simulated nodes: they are scheduled, start and exit 0 without running
their command (scripts/k8s/kwok.yaml), which is what the Job, TTL and garbage-collection
controllers act on; the tests that need that are marked `kwok` (on kind the merge would run).
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

import commands
import waits
from chartkit.chart import STAGES, presets
from kube import by_kind, create_pvc, render, selector

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def pvc_namespace(tools, namespace) -> str:
    """The module's namespace with the PVC every stage mounts."""
    create_pvc(tools, namespace)
    return namespace


def unscheduled(kube, ns: str, sel: str) -> list[str]:
    """Pods the scheduler could not place, with its reason (a wait ends at once on these)."""
    return [
        f"Pod/{p['metadata']['name']}: {c.get('reason')}: {c.get('message')}"
        for p in kube.pods(ns, sel)
        for c in waits.conditions(p)
        if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
    ]


def finished_job(kube, ns: str, release: str, component: str, name: str | None = None) -> dict:
    """The one Job of a release's stage, once it succeeded (and, given a name, once it is that one)."""
    sel = selector(release, component)

    def jobs():
        found = kube.jobs(ns, sel)
        return [j for j in found if name is None or j["metadata"]["name"] == name] if len(found) == 1 else found

    (job,) = waits.wait_for(
        jobs,
        waits.job_state,
        what=f"{component} Job of release {release}",
        count=1,
        timeout=120,
        interval=1,
        problems=lambda: unscheduled(kube, ns, sel),
    )
    return job


def pods_of_job(kube, ns: str, job: dict) -> list[dict]:
    return kube.pods(ns, f"batch.kubernetes.io/job-name={job['metadata']['name']}")


@pytest.mark.kwok  # its Job pods must exit 0 at once
def test_noop_upgrade_leaves_a_finished_job_alone_and_a_change_replaces_it(tools, kube, pvc_namespace):
    namespace = pvc_namespace
    release = "merge-life"
    base = {"values": ["values/8b.yaml"], "sets": ["stages={merge-sft}"]}
    changed = {**base, "sets": [*base["sets"], "merge.exportSize=4"]}
    tools.run(commands.helm_install(tools, release, namespace, **base))
    first = finished_job(kube, namespace, release, "merge-sft")
    first_pods = {p["metadata"]["uid"] for p in pods_of_job(kube, namespace, first)}
    assert len(first_pods) == 1, first_pods

    tools.run(commands.helm_upgrade(tools, release, namespace, **base))
    same = finished_job(kube, namespace, release, "merge-sft")
    assert same["metadata"]["uid"] == first["metadata"]["uid"], "a no-op upgrade replaced the finished Job"
    assert {p["metadata"]["uid"] for p in pods_of_job(kube, namespace, same)} == first_pods, "a no-op upgrade ran the finished Job again"

    tools.run(commands.helm_upgrade(tools, release, namespace, **changed))
    (want,) = by_kind(render(tools, release, namespace, **changed), "Job")
    assert want["metadata"]["name"] != first["metadata"]["name"], "a changed export size kept the Job's name"
    second = finished_job(kube, namespace, release, "merge-sft", want["metadata"]["name"])
    assert kube.job(namespace, first["metadata"]["name"]) is None
    tools.run(commands.helm_uninstall(tools, release, namespace))
    assert kube.jobs(namespace, selector(release)) == []
    del second


@pytest.mark.kwok  # its Job pods must exit 0 at once
def test_a_job_deleted_by_its_ttl_runs_again_on_upgrade_so_the_default_keeps_it(tools, kube, pvc_namespace):
    """The TTL-after-finished controller deletes a finished Job; Helm re-creates what its release
    lacks, so the next upgrade runs the (hours-long) stage again. The chart's default keeps it."""
    namespace, release = pvc_namespace, "ttl-merge"
    (default_job,) = by_kind(render(tools, release, namespace, values=["values/8b.yaml"], sets=["stages={merge-sft}"]), "Job")
    assert "ttlSecondsAfterFinished" not in default_job["spec"], default_job["spec"]

    args = {"values": ["values/8b.yaml"], "sets": ["stages={merge-sft}", "merge.ttlSecondsAfterFinished=2"]}
    tools.run(commands.helm_install(tools, release, namespace, **args))
    first = finished_job(kube, namespace, release, "merge-sft")
    waits.wait_for(
        lambda: [{"kind": "JobList", "items": kube.jobs(namespace, selector(release, "merge-sft"))}],
        lambda lst: waits.SUCCEEDED if not lst["items"] else waits.RUNNING,
        what="the TTL controller to delete the finished Job",
        count=1,
        timeout=60,
        interval=1,
    )
    tools.run(commands.helm_upgrade(tools, release, namespace, **args))
    again = finished_job(kube, namespace, release, "merge-sft")
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert again["metadata"]["uid"] != first["metadata"]["uid"], "the upgrade did not re-create the Job"
    assert pods_of_job(kube, namespace, again), "the re-created Job ran no pod"
    tools.run(commands.helm_uninstall(tools, release, namespace))


@pytest.mark.kwok  # its Job pods must exit 0 at once
def test_uninstall_leaves_no_orphan_pods(tools, kube, pvc_namespace):
    namespace = pvc_namespace
    release = "orphans"
    args = {"values": ["values/8b.yaml"], "sets": ["stages={merge-sft,merge-dpo}"]}
    tools.run(commands.helm_install(tools, release, namespace, **args))
    jobs = [finished_job(kube, namespace, release, c) for c in ("merge-sft", "merge-dpo")]
    pods = [p for j in jobs for p in pods_of_job(kube, namespace, j)]
    assert len(pods) == 2, pods
    tools.run(commands.helm_uninstall(tools, release, namespace))
    # Helm deletes the Jobs; their pods go only through the garbage collector (ownerReferences).
    waits.wait_for(
        lambda: [{"kind": "PodList", "items": [p for j in jobs for p in pods_of_job(kube, namespace, j)]}],
        lambda lst: waits.SUCCEEDED if not lst["items"] else waits.RUNNING,
        what="the uninstalled Jobs' pods to be deleted",
        count=1,
        timeout=60,
        interval=1,
    )


@pytest.mark.kwok  # its Job pods must exit 0 at once
def test_hand_made_pvc_is_refused_by_a_plain_install_and_adopted_by_existing_claim(tools, kube, namespace_factory):
    """The original example's README had users create `llama-factory` by hand: a plain install
    fails naming storage.existingClaim, which adopts the PVC untouched."""
    namespace = namespace_factory(commands.unique_name("llf-handmade")).name
    create_pvc(tools, namespace)
    before = kube.pvc(namespace, "llama-factory")
    args = {"values": ["values/8b.yaml"], "sets": ["stages={workspace}", "notebook.enabled=false"]}
    plain = tools.run(commands.helm_install(tools, "ws-plain", namespace, **args), check=False)
    assert plain.returncode != 0, plain.stdout
    # The chart's own message (a lookup at install) instead of Helm's ownership error, which names no value.
    assert (
        "storage.name: the namespace" in plain.stderr
        and '"llama-factory", created outside Helm' in plain.stderr
        and "--set storage.existingClaim=llama-factory" in plain.stderr
    ), plain.stderr
    tools.run(commands.helm_uninstall(tools, "ws-plain", namespace), check=False)

    adopt = {**args, "sets": [*args["sets"], "storage.existingClaim=llama-factory"]}
    tools.run(commands.helm_install(tools, "ws-adopt", namespace, **adopt))
    finished_job(kube, namespace, "ws-adopt", "workspace")
    after = kube.pvc(namespace, "llama-factory")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"].get("labels") == before["metadata"].get("labels"), "the chart relabelled the PVC"
    assert "meta.helm.sh/release-name" not in (after["metadata"].get("annotations") or {})
    tools.run(commands.helm_uninstall(tools, "ws-adopt", namespace))
    assert kube.pvc(namespace, "llama-factory")["metadata"]["uid"] == before["metadata"]["uid"]


@pytest.mark.parametrize("preset", presets())
def test_gitops_apply_twice_changes_nothing(tools, namespace_factory, preset):
    """Every stage of a preset rendered once and applied server-side twice, as a GitOps
    controller syncs a rendered folder: the second apply must leave every object as it was."""
    release = commands.release_name("git", preset)
    namespace = namespace_factory(commands.unique_name(release[:40])).name
    manifest = tools.run(
        commands.helm_template(tools, release, namespace, values=[f"values/{preset}"], sets=[f"stages={{{','.join(STAGES)}}}"])
    ).stdout
    apply = commands.kubectl_apply_manifest(tools, namespace, "gitops")
    first = json.loads(tools.run(apply, input=manifest).stdout)
    second = json.loads(tools.run(apply, input=manifest).stdout)
    assert len(first["items"]) == len([d for d in yaml.safe_load_all(manifest) if d])

    # Controllers write between the applies (the binder sets the PVC's volumeName, the scheduler
    # a pod's nodeName, Jobs run), so the check is what the apply owns: the gitops field
    # manager's entry, which a no-op apply leaves as it was.
    def applied(out: dict) -> dict:
        return {
            (o["kind"], o["metadata"]["name"]): [m for m in o["metadata"]["managedFields"] if m["manager"] == "gitops"]
            for o in out["items"]
        }

    changed = [k for k, v in applied(first).items() if applied(second).get(k) != v]
    assert not changed, f"the second apply changed {changed}"
    # kubectl diff reads each live object, then dry-runs the apply: a controller writing its status
    # in between (a Job's pods finishing on kwok) shows as a status diff. A real change would show in
    # every attempt; the controllers' writes settle.
    for _ in range(30):
        diff = tools.run(commands.kubectl_diff_manifest(tools, namespace, "gitops"), input=manifest, check=False)
        if diff.returncode == 0:
            break
        time.sleep(1)
    assert diff.returncode == 0, diff.stdout + diff.stderr


@pytest.mark.kwok  # its Job pods must exit 0 at once
def test_a_pipeline_in_one_release_upgrades_only_what_a_change_reaches(tools, kube, pvc_namespace):
    """The seven stages in one release (each waits for its producers in `wait-for-inputs`): the
    API server takes the waits (podFailurePolicy on an init container, the fingerprint through
    the downward API); a no-op upgrade replaces nothing, and a change to the merges replaces
    exactly the stages from the merges on, each new one waiting for its new producer."""
    namespace, release = pvc_namespace, "pipe"
    base = {
        "values": ["values/8b.yaml"],
        "sets": [f"stages={{{','.join(STAGES)}}}", "notebook.enabled=false", "storage.existingClaim=llama-factory"],
    }
    tools.run(commands.helm_install(tools, release, namespace, **base))

    def stage_objects():
        jobs = {j["metadata"]["labels"]["app.kubernetes.io/component"]: j for j in kube.jobs(namespace, selector(release))}
        djs = {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in kube.customs(namespace, "batch.tensorstack.dev/v1beta1", "deepspeedjobs", selector(release))
        }
        return {**jobs, **djs}

    first = stage_objects()
    assert set(first) == {"workspace", "sft", "merge-sft", "dpo", "merge-dpo", "eval"}, sorted(first)
    waiting = {
        c: [a for a in o["spec"]["template"]["spec"].get("initContainers", [{}])[0].get("command", []) if "@" in a]
        for c, o in first.items()
        if o["kind"] == "Job"
    }
    assert [a.split("=")[0] for a in waiting["merge-dpo"]] == ["merge-sft", "dpo"], waiting
    for component in ("workspace", "merge-sft", "merge-dpo", "eval"):
        finished_job(kube, namespace, release, component)

    tools.run(commands.helm_upgrade(tools, release, namespace, **base))
    same = stage_objects()
    assert {c: o["metadata"]["uid"] for c, o in same.items()} == {c: o["metadata"]["uid"] for c, o in first.items()}, (
        "a no-op upgrade replaced a stage"
    )

    tools.run(commands.helm_upgrade(tools, release, namespace, **{**base, "sets": [*base["sets"], "merge.exportSize=7"]}))
    after = stage_objects()
    replaced = {c for c in after if after[c]["metadata"]["uid"] != first[c]["metadata"]["uid"]}
    assert replaced == {"merge-sft", "dpo", "merge-dpo", "eval"}, replaced
    tools.run(commands.helm_uninstall(tools, release, namespace))
