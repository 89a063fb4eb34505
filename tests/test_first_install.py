"""Issue 14 (a first install on a real T9k cluster), the template side: what the Notebook's pod
carries, quantity helpers that refuse a unit they do not know, the serve stage's NetworkPolicy
and the DeepSpeedJob's conventional pod shape."""

import shutil
import subprocess

import pytest

from chartkit import helm
from chartkit.chart import ROOT
from chartkit.pipeline import pod_spec


def objects(*sets, major="3", values=()):
    return helm.render(helm.Release(values=("values/8b.yaml",) + values, sets=sets, major=major))


def one(objs, kind):
    (o,) = [o for o in objs if o["kind"] == kind]
    return o


@pytest.mark.parametrize("major", helm.MAJORS)
def test_the_notebook_carries_pod_labels_and_annotations(major):
    """common.podLabels and podAnnotations promise every pod; a Notebook's template is a bare
    PodSpec, so they go on the Notebook that T9k builds the pod from (before: neither)."""
    nb = one(
        objects("stages={workspace}", "common.podLabels.team=a", "common.podAnnotations.owner=b", "common.labels.cost=c", major=major),
        "Notebook",
    )
    assert nb["metadata"]["labels"]["team"] == "a" and nb["metadata"]["labels"]["cost"] == "c"
    assert nb["metadata"]["annotations"] == {"owner": "b"}


@pytest.mark.parametrize(
    "helper,quantity,ok",
    [
        ("mebibytes", "16Gi", "16384"),
        ("mebibytes", "1Ti", "1048576"),
        ("mebibytes", "512Mi", "512"),
        ("mebibytes", "5Ki", None),
        ("mebibytes", "10", None),
        ("mebibytes", "1G", None),
        ("mebibytes", "1.5Gi", None),
        ("millicores", "8", "8000"),
        ("millicores", "0.5", "500"),
        ("millicores", "250m", "250"),
        ("millicores", "2k", None),
        ("millicores", "abc", None),
        ("millicores", "1.5m", None),
    ],
)
def test_quantity_helpers_fail_on_an_unknown_unit(tmp_path, helper, quantity, ok):
    """Before, an unknown unit compared as 0 (fail open): "5Ki" passed every memory rule."""
    chart = tmp_path / "chart"
    shutil.copytree(
        ROOT, chart, ignore=shutil.ignore_patterns(".venv", ".tools", ".git", "tests", "scripts", "docs", "out", "carry", "images")
    )
    (chart / "templates" / "zz-quantity.yaml").write_text(f'# q: {{{{ include "llama-factory.{helper}" "{quantity}" }}}}\n')
    proc = subprocess.run(
        [str(helm.helm_path("3")), "template", "t", str(chart), "--show-only", "templates/zz-quantity.yaml"], capture_output=True, text=True
    )
    if ok is None:
        assert proc.returncode != 0 and f'llama-factory.{helper}: "{quantity}"' in proc.stderr and "Fix:" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert f"# q: {ok}" in proc.stdout


@pytest.mark.parametrize("major", helm.MAJORS)
def test_serve_network_policy(major):
    """Off by default (the API key is the guard); on, it selects exactly the serve pods and
    admits the namespace and the named peers to vLLM's port only."""
    assert not [o for o in objects("stages={serve}", major=major) if o["kind"] == "NetworkPolicy"]
    objs = objects(
        "stages={serve}",
        "serving.networkPolicy.enabled=true",
        "serving.networkPolicy.from.ingress.namespaceSelector.matchLabels.team=edge",
        major=major,
    )
    np, dep = one(objs, "NetworkPolicy"), one(objs, "Deployment")
    sel = np["spec"]["podSelector"]["matchLabels"]
    assert sel.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert sel["app.kubernetes.io/component"] == "serve"
    (rule,) = np["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"team": "edge"}}}]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert [p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]] == ["http"]
    only_peers = objects(
        "stages={serve}",
        "serving.networkPolicy.enabled=true",
        "serving.networkPolicy.allowSameNamespace=false",
        "serving.networkPolicy.from.gw.podSelector.matchLabels.app=gw",
        major=major,
    )
    assert one(only_peers, "NetworkPolicy")["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app": "gw"}}}]


CONVENTIONAL = {
    "runAsNonRoot": False,
    "runAsUser": 0,
    "readOnlyRootFilesystem": False,
    "capabilities": {"add": ["IPC_LOCK"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("major", helm.MAJORS)
@pytest.mark.parametrize("sets", [(), ("training.workers=2",), ("training.rdma.enabled=true",)])
def test_conventional_pod_shape_is_exactly_the_examples(sets, major):
    """training.podShape=conventional: the shape of T9k's DeepSpeedJob examples (root, writable
    root filesystem, default capabilities + IPC_LOCK) and the image's HOME, for every worker
    count; the restricted default keeps HOME=/tmp and its own security context."""
    for stage in ("sft", "dpo"):
        dj = one(objects(f"stages={{{stage}}}", "training.podShape=conventional", *sets, major=major), "DeepSpeedJob")
        (c,) = pod_spec(dj)["containers"]
        assert c["securityContext"] == CONVENTIONAL
        assert "HOME" not in {e["name"] for e in c["env"]}
        dflt = one(objects(f"stages={{{stage}}}", *sets, major=major), "DeepSpeedJob")
        (d,) = pod_spec(dflt)["containers"]
        assert d["securityContext"] != CONVENTIONAL and {"name": "HOME", "value": "/tmp"} in d["env"]


@pytest.mark.parametrize("major", helm.MAJORS)
@pytest.mark.parametrize("shape", ["restricted", "conventional"])
def test_remote_ranks_get_the_controllers_environment_file(shape, major):
    """With several workers the T9k controller writes the container's environment into
    /root/.deepspeed_env for DeepSpeed's launcher to pass to the remote ranks; the restricted
    shape's HOME is /tmp, so the chart points DS_ENV_FILE there (the conventional shape's HOME
    is /root already). One worker launches locally and needs no file."""
    for workers, want in ((1, None), (2, "/root/.deepspeed_env" if shape == "restricted" else None)):
        dj = one(objects(f"training.workers={workers}", f"training.podShape={shape}", major=major), "DeepSpeedJob")
        (c,) = pod_spec(dj)["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env.get("DS_ENV_FILE") == want, (workers, env.get("DS_ENV_FILE"))
