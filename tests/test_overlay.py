"""A team overlay sets queue, priority, storage class, registry, pull secrets,
HF endpoint, node selector, tolerations and affinity for every stage at once."""
import pytest
import yaml

from chartkit.chart import ROOT, STAGES
from chartkit.testkit import pod_templates, render

TEAM = yaml.safe_load((ROOT / "values/team-example.yaml").read_text())["common"]


@pytest.mark.parametrize("stage", STAGES)
def test_team_overlay_reaches_every_pod(stage):
    objects = render("8b-2xdp.yaml", stage, values=("values/team-example.yaml",))
    pods = list(pod_templates(objects))
    assert pods
    for obj, spec, meta in pods:
        where = f"{stage} {obj['kind']}"
        assert spec["nodeSelector"] == TEAM["nodeSelector"], where
        assert spec["tolerations"] == TEAM["tolerations"], where
        assert spec["affinity"] == TEAM["affinity"], where
        assert spec["imagePullSecrets"] == [{"name": "team-a-registry"}], where
        for c in spec["containers"]:
            assert c["image"].startswith("registry.team-a.example.com/"), where
            if obj["kind"] != "Pod":  # the helm test pod talks to the Service only
                env = {e["name"]: e for e in c["env"]}
                assert env["HF_ENDPOINT"]["value"] == "https://hf-mirror.com", where
                assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "team-a-hf-token", "key": "token"}
        if obj["kind"] == "DeepSpeedJob":
            assert obj["spec"]["scheduler"] == {"t9kScheduler": {"queue": "team-a", "priority": 80}}
        elif obj["kind"] == "Notebook":
            assert obj["spec"]["scheduler"] == {"t9kScheduler": {"queue": "team-a"}}
        else:
            assert spec["schedulerName"] == "t9k-scheduler", where
            assert meta["labels"]["scheduler.tensorstack.dev/queue"] == "team-a", where
            assert meta["labels"]["team"] == "team-a"
    for o in objects:
        if o["kind"] == "PersistentVolumeClaim":
            assert o["spec"]["storageClassName"] == "team-a-cephfs"
            assert o["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
