"""Peer tier: the chart's merge step (files/launch.py export) with the real
`llamafactory-cli export` of LLaMA-Factory 0.9.5 on CPU, on a tiny randomly
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

import pytest
import yaml

from chartkit import pipeline
from chartkit.chart import ROOT
from conftest import peer_missing
from harness.testkit import render

pytestmark = pytest.mark.skipif(peer_missing() is not None, reason=peer_missing() or "")

# `llamafactory-cli export` imports LLaMA-Factory's multimodal plugin, which imports torchaudio
# at module level; no torchaudio is published for the peer stack's torch (2.13.0), and the
# export never uses it. Without a real one the CLI runs with a placeholder package that fails
# on any use: the export either never touches it or this test fails.
PLACEHOLDER = '''"""Placeholder for the peer tier (tests/peer/test_launch_export.py): fails on any use."""
def __getattr__(name):
    raise RuntimeError(f"torchaudio.{name}: torchaudio is not installed in the peer tier (placeholder)")
'''


@pytest.fixture(scope="module", autouse=True)
def torchaudio_for_the_cli(tmp_path_factory):
    if importlib.util.find_spec("torchaudio") is not None:
        yield
        return
    site = tmp_path_factory.mktemp("placeholder")
    (site / "torchaudio").mkdir()
    (site / "torchaudio" / "__init__.py").write_text(PLACEHOLDER)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), before]))
    yield
    if before is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = before


spec = importlib.util.spec_from_file_location("chart_launch", ROOT / "files" / "launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)
CLI = (str(Path(sys.executable).parent / "llamafactory-cli"), "export")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT / "scripts"))
    import gpu_proof

    root = tmp_path_factory.mktemp("pvc")
    base, adapter = root / "models" / "tiny", root / "saves" / "tiny" / "lora" / "sft"
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=30100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=30004,
        eos_token_id=30005,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(base)
    gpu_proof.build_tokenizer(base, n_words=30000)
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], lora_alpha=16))
    peft_model.save_pretrained(adapter)
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
    return {"root": root, "config": config, "adapter": adapter, "final": Path(merge["export_dir"]), "rendered": rendered}


def test_the_rendered_merge_config_is_the_one_exported(workspace):
    assert set(yaml.safe_load(workspace["config"].read_text())) == set(workspace["rendered"])


def test_real_export_lands_whole_and_a_relaunch_skips_it(workspace, capsys):
    final = workspace["final"]
    assert launch.export(str(workspace["config"]), cli=CLI) == 0
    files = sorted(p.name for p in final.iterdir())
    assert "config.json" in files and any(f.endswith(".safetensors") for f in files) and ".merged-from" in files
    assert not final.with_name(final.name + ".partial").exists()
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(final).config.num_hidden_layers == 2
    before = {p.name: p.stat().st_mtime_ns for p in final.iterdir()}
    capsys.readouterr()
    assert launch.export(str(workspace["config"]), cli=CLI) == 0
    assert "llama-factory-launch: skip:" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in final.iterdir()} == before


def test_a_failed_real_export_leaves_the_merged_model(workspace, tmp_path):
    final = workspace["final"]
    if not final.exists():
        assert launch.export(str(workspace["config"]), cli=CLI) == 0
    served = {p.name: p.read_bytes() for p in final.iterdir()}
    broken = yaml.safe_load(workspace["config"].read_text())
    # A retrained adapter (new stamp) whose weights are unreadable: the export fails.
    bad = tmp_path / "adapter"
    shutil.copytree(workspace["adapter"], bad)
    (bad / "adapter_model.safetensors").write_bytes(b"not safetensors")
    broken["adapter_name_or_path"] = str(bad)
    config = tmp_path / "merge.yaml"
    config.write_text(yaml.safe_dump(broken))
    assert launch.export(str(config), cli=CLI) != 0
    assert {p.name: p.read_bytes() for p in final.iterdir()} == served
    assert json.loads((final / ".merged-from").read_text())["adapter"] == str(workspace["adapter"])
