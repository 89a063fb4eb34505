"""The chart's launcher step (files/launch.py) in the merge containers: the merge writes to a
temporary directory and renames it on success, leaves the served model alone when it fails,
removes a leftover partial merge, and skips a merge of the same adapter (a stand-in for
`llamafactory-cli export`; the launcher's own logic is under test). Its training choices are
in tests/test_launch.py."""

import importlib.util
import json
import sys

import yaml

from chartkit.chart import ROOT

spec = importlib.util.spec_from_file_location("chart_launch", ROOT / "files" / "launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)


def merge_cfg(tmp_path):
    adapter = tmp_path / "saves" / "sft"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"adapter v1")
    config = tmp_path / "merge.yaml"
    config.write_text(yaml.safe_dump({"adapter_name_or_path": str(adapter), "export_dir": str(tmp_path / "models" / "m-sft")}))
    return config, adapter, tmp_path / "models" / "m-sft"


# A stand-in for `llamafactory-cli export` that writes the export_dir of the config it is given
# (shard by shard) and exits with the code asked for: the launcher's own logic is under test.
FAKE_EXPORT = (
    "import sys, yaml, pathlib; d = pathlib.Path(yaml.safe_load(open(sys.argv[1]))['export_dir']); "
    "d.mkdir(parents=True); (d / 'config.json').write_text('{}'); (d / 'model-1.safetensors').write_text('x'); "
    "sys.exit(int(EXIT))"
)


def exporter(code):
    return (sys.executable, "-c", FAKE_EXPORT.replace("EXIT", str(code)))


def test_merge_writes_to_a_temp_dir_and_renames_on_success(tmp_path):
    config, _, final = merge_cfg(tmp_path)
    assert launch.export(str(config), cli=exporter(0)) == 0
    assert sorted(p.name for p in final.iterdir()) == [".merged-from", "config.json", "model-1.safetensors"]
    assert not final.with_name("m-sft.partial").exists()


def test_a_failed_merge_leaves_the_served_model_alone(tmp_path):
    config, adapter, final = merge_cfg(tmp_path)
    assert launch.export(str(config), cli=exporter(0)) == 0
    served = {p.name: p.read_bytes() for p in final.iterdir()}
    (adapter / "adapter_model.safetensors").write_bytes(b"adapter v2, retrained")
    assert launch.export(str(config), cli=exporter(1)) == 1
    assert {p.name: p.read_bytes() for p in final.iterdir()} == served


def test_a_leftover_partial_merge_is_removed_before_merging_again(tmp_path):
    config, _, final = merge_cfg(tmp_path)
    partial = final.with_name("m-sft.partial")
    partial.mkdir(parents=True)
    (partial / "model-7.safetensors").write_text("half")
    assert launch.export(str(config), cli=exporter(0)) == 0
    assert not partial.exists() and not (final / "model-7.safetensors").exists()


def test_a_merge_of_the_same_adapter_is_skipped_and_a_new_adapter_merged_again(tmp_path, capsys):
    config, adapter, final = merge_cfg(tmp_path)
    assert launch.export(str(config), cli=exporter(0)) == 0
    assert launch.export(str(config), cli=exporter(1)) == 0  # the exporter is never called
    assert "llama-factory-launch: skip:" in capsys.readouterr().out
    (adapter / "adapter_model.safetensors").write_bytes(b"adapter v2, a different size")
    assert launch.decide_export(yaml.safe_load(config.read_text()))["action"] == "merge"
    assert launch.export(str(config), cli=exporter(0)) == 0
    assert json.loads((final / ".merged-from").read_text())["files"]["adapter_model.safetensors"][0] == len(b"adapter v2, a different size")


def test_an_export_dir_the_chart_did_not_finish_is_merged_again(tmp_path):
    config, _, final = merge_cfg(tmp_path)
    final.mkdir(parents=True)
    (final / "model-1.safetensors").write_text("from an older, non-atomic merge")
    assert launch.decide_export(yaml.safe_load(config.read_text()))["action"] == "merge"
