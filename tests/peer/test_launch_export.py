"""Peer tier: the chart's merge step (files/launch.py export) with the real
`llamafactory-cli export` of LLaMA-Factory 0.9.5 on CPU (its console script, as
a process of its own: a fork of the peer tier's forkserver), on a tiny randomly
initialised Llama and a LoRA adapter made by PEFT: the merged model lands in
export_dir only when the export succeeded, a relaunch skips it, and a failed
export leaves the served model as it was. The rendered merge.yaml of the chart
is used, with its paths moved to a temporary directory."""

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml

from chartkit import pipeline
from chartkit.chart import ROOT
from conftest import peer_missing
from harness.testkit import render

pytestmark = pytest.mark.skipif(peer_missing() is not None, reason=peer_missing() or "")

spec = importlib.util.spec_from_file_location("chart_launch", ROOT / "files" / "launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)
CLI_SCRIPT = str(Path(sys.executable).parent / "llamafactory-cli")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, peer_stack):
    root = tmp_path_factory.mktemp("pvc")
    base, adapter = root / "models" / "tiny", root / "saves" / "tiny" / "lora" / "sft"
    made = peer_stack.run(
        "-m", "harness.tiny_llama", str(base), "--layers", "2", "--adapter", str(adapter), capture_output=True, text=True, timeout=300
    )
    assert made.returncode == 0, made.stderr[-3000:]
    rendered = pipeline.config_data(render("8b.yaml", "merge-sft"), "merge.yaml")
    merge = dict(
        rendered,
        model_name_or_path=str(base),
        adapter_name_or_path=str(adapter),
        export_dir=str(root / "models" / "tiny-sft"),
        export_size=1,
    )
    config = root / "merge.yaml"
    config.write_text(yaml.safe_dump(merge))
    # `llamafactory-cli export`, the console script the image runs, as its own process (a fork of
    # the peer tier's forkserver) with the CLI's environment.
    cli = tuple(peer_stack.command(CLI_SCRIPT, "export"))
    return {
        "root": root,
        "config": config,
        "adapter": adapter,
        "final": Path(merge["export_dir"]),
        "rendered": rendered,
        "cli": cli,
        "stack": peer_stack,
    }


def export(workspace, config) -> int:
    """The chart's merge step, run with the peer environment (the launcher's and the CLI's)."""
    with mock.patch.dict(os.environ, workspace["stack"].env, clear=True):
        return launch.export(str(config), cli=workspace["cli"])


def test_the_rendered_merge_config_is_the_one_exported(workspace):
    assert set(yaml.safe_load(workspace["config"].read_text())) == set(workspace["rendered"])


def test_real_export_lands_whole_and_a_relaunch_skips_it(workspace, capsys):
    final = workspace["final"]
    assert export(workspace, workspace["config"]) == 0
    files = sorted(p.name for p in final.iterdir())
    assert "config.json" in files and any(f.endswith(".safetensors") for f in files) and ".merged-from" in files
    assert not final.with_name(final.name + ".partial").exists()
    load = "import sys; from transformers import AutoModelForCausalLM as M\nprint(M.from_pretrained(sys.argv[1]).config.num_hidden_layers)"
    loaded = workspace["stack"].run("-c", load, str(final), capture_output=True, text=True, timeout=300)
    assert loaded.stdout == "2\n", loaded.stderr[-3000:]
    before = {p.name: p.stat().st_mtime_ns for p in final.iterdir()}
    capsys.readouterr()
    assert export(workspace, workspace["config"]) == 0
    assert "llama-factory-launch: skip:" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in final.iterdir()} == before


def test_a_failed_real_export_leaves_the_merged_model(workspace, tmp_path):
    final = workspace["final"]
    if not final.exists():
        assert export(workspace, workspace["config"]) == 0
    served = {p.name: p.read_bytes() for p in final.iterdir()}
    broken = yaml.safe_load(workspace["config"].read_text())
    # A retrained adapter (new stamp) whose weights are unreadable: the export fails.
    bad = tmp_path / "adapter"
    shutil.copytree(workspace["adapter"], bad)
    (bad / "adapter_model.safetensors").write_bytes(b"not safetensors")
    broken["adapter_name_or_path"] = str(bad)
    config = tmp_path / "merge.yaml"
    config.write_text(yaml.safe_dump(broken))
    assert export(workspace, config) != 0
    assert {p.name: p.read_bytes() for p in final.iterdir()} == served
    assert json.loads((final / ".merged-from").read_text())["adapter"] == str(workspace["adapter"])
