"""files/download.py, the workspace stage's download script, on a fake hub: the
first run downloads, a second run with the model present does no work."""

import importlib.util
import json
import sys
import types

import pytest

from chartkit import pipeline
from chartkit.chart import ROOT
from harness.testkit import render

spec = importlib.util.spec_from_file_location("download", ROOT / "files" / "download.py")
download = importlib.util.module_from_spec(spec)
spec.loader.exec_module(download)


@pytest.fixture
def hub(monkeypatch):
    """A fake huggingface_hub whose snapshot_download writes a config.json."""
    calls = []

    def snapshot_download(repo_id, revision=None, local_dir=None, ignore_patterns=None, token=None, repo_type=None):
        calls.append({"repo": repo_id, "revision": revision, "ignore": ignore_patterns, "type": repo_type, "token": token})
        if local_dir:
            (download.Path(local_dir) / "config.json").write_text("{}")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    return calls


def plan_for(tmp_path, **sets):
    """The chart's rendered plan with PVC paths moved under tmp_path."""
    plan = pipeline.config_data(render("8b.yaml", "workspace", *(f"{k}={v}" for k, v in sets.items())), "download.json")
    text = json.dumps(plan).replace("/t9k/mnt", str(tmp_path / "pvc")).replace("/app/data", str(tmp_path / "image-data"))
    return json.loads(text)


def test_second_run_does_no_work(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "from-secret")
    plan = plan_for(tmp_path)
    (tmp_path / "image-data").mkdir()
    (tmp_path / "image-data" / "identity.json").write_text("[]")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))

    assert download.main(["download.py", str(path)]) == 0
    model_calls = [c for c in hub if c["type"] is None]
    assert model_calls == [
        {"repo": "meta-llama/Llama-3.1-8B", "revision": "main", "ignore": ["original/*"], "type": None, "token": "from-secret"}
    ]
    assert sorted(c["repo"] for c in hub if c["type"] == "dataset") == [
        "llamafactory/DPO-En-Zh-20k",
        "llamafactory/alpaca_gpt4_en",
        "llamafactory/alpaca_gpt4_zh",
    ]
    assert (tmp_path / "pvc/data/identity.json").read_text() == "[]"

    first = len(hub)
    assert download.main(["download.py", str(path)]) == 0
    assert len(hub) == first, "a second run must not call the hub"


def test_changed_revision_downloads_again(tmp_path, hub):
    plan = plan_for(tmp_path)["model"]
    assert download.download_model(plan) is True
    assert download.download_model(plan) is False
    assert download.download_model({**plan, "revision": "v2"}) is True


def test_failed_download_leaves_no_marker(tmp_path, monkeypatch):
    def broken(**kwargs):
        raise OSError("connection reset")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=broken))
    plan = plan_for(tmp_path)["model"]
    with pytest.raises(OSError):
        download.download_model(plan)
    assert not (download.Path(plan["target"]) / download.MARKER).exists()


def test_modelscope_plan_uses_modelscope(tmp_path, monkeypatch, hub):
    seen = {}

    def snapshot_download(repo, revision=None, local_dir=None, ignore_file_pattern=None, repo_type=None):
        seen.setdefault("calls", []).append((repo, repo_type, ignore_file_pattern))
        if local_dir:
            (download.Path(local_dir) / "config.json").write_text("{}")

    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=snapshot_download))
    plan = plan_for(tmp_path, **{"model.source": "modelscope"})
    download.download_model(plan["model"])
    download.download_datasets(plan["datasets"])
    repo, rtype, patterns = seen["calls"][0]
    assert repo == "LLM-Research/Meta-Llama-3.1-8B" and rtype is None
    assert any(__import__("re").match(p, "original/consolidated.00.pth") for p in patterns)
    assert {c[0] for c in seen["calls"][1:]} == {"llamafactory/alpaca_gpt4_en", "llamafactory/alpaca_gpt4_zh"}
    # The default DPO datasets are on the Hugging Face Hub only: LLaMA-Factory loads them from
    # there even with ModelScope on, so the workspace caches them from there (they were once
    # silently left out, and the DPO job then needed the Hub at run time).
    assert [(c["repo"], c["type"]) for c in hub] == [("llamafactory/DPO-En-Zh-20k", "dataset")]


@pytest.mark.parametrize("source", ["huggingface", "modelscope"])
def test_every_hub_dataset_is_cached_from_the_hub_llamafactory_reads(source):
    """LLaMA-Factory's data parser loads a dataset from ModelScope when ModelScope is on
    (USE_MODELSCOPE_HUB, model.source=modelscope) and it has an ms_hub_url, or when it has no
    hf_hub_url; from the Hugging Face Hub otherwise. The plan caches each one from there."""
    sets = (
        "model.source=" + source,
        "datasets.ms_only.ms_hub_url=team/ms-only",
        "datasets.both.hf_hub_url=team/both-hf",
        "datasets.both.ms_hub_url=team/both-ms",
    )
    objects = render("8b.yaml", "workspace", *sets)
    plan = pipeline.config_data(objects, "download.json")["datasets"]["datasets"]
    want = {
        "huggingface": {
            ("team/ms-only", "modelscope"),
            ("team/both-hf", "huggingface"),
            ("llamafactory/DPO-En-Zh-20k", "huggingface"),
            ("llamafactory/alpaca_gpt4_en", "huggingface"),
        },
        "modelscope": {
            ("team/ms-only", "modelscope"),
            ("team/both-ms", "modelscope"),
            ("llamafactory/DPO-En-Zh-20k", "huggingface"),
            ("llamafactory/alpaca_gpt4_en", "modelscope"),
        },
    }[source]
    assert want <= {(d["repo"], d["source"]) for d in plan}
    assert len(plan) == len({d["repo"] for d in plan}), plan


def test_missing_local_file_is_reported_not_fatal(tmp_path, capsys):
    plan = plan_for(tmp_path)["files"]
    assert download.seed_files(plan) == 0
    assert "upload it to the PVC" in capsys.readouterr().out
