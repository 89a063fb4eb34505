"""Fill the workspace PVC: the base model, the Hub datasets, and local dataset files.

Run by the workspace stage's download Job with the JSON plan the chart renders
(`python download.py /etc/llama-factory/download.json`). Idempotent: a model
directory whose completion marker matches the plan is left alone, so a second
run with the model present does no work; an interrupted run resumes (the hub
clients skip files already complete).
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
from pathlib import Path

MARKER = ".download-complete.json"


def _marker_matches(target: Path, want: dict) -> bool:
    try:
        return json.loads((target / MARKER).read_text()) == want
    except (OSError, ValueError):
        return False


def _fetch_model(plan: dict) -> None:
    source, repo, revision = plan["source"], plan["repo"], plan["revision"]
    target = Path(plan["target"])
    if source == "huggingface":
        from huggingface_hub import snapshot_download

        snapshot_download(
            repo_id=repo,
            revision=revision,
            local_dir=str(target),
            ignore_patterns=plan["exclude"] or None,
            token=os.environ.get("HF_TOKEN") or None,
        )
    elif source == "modelscope":
        from modelscope import snapshot_download

        snapshot_download(
            repo,
            revision=revision,
            local_dir=str(target),
            ignore_file_pattern=[fnmatch.translate(p) for p in plan["exclude"]],
        )
    else:
        raise SystemExit(f"download: unknown source {source!r} (model.source)")


def download_model(plan: dict) -> bool:
    """Download the model unless its marker matches; return True when it did work."""
    target = Path(plan["target"])
    want = {k: plan[k] for k in ("source", "repo", "revision", "exclude")}
    if _marker_matches(target, want):
        print(f"model: {target} is complete ({plan['source']}:{plan['repo']}@{plan['revision']}), nothing to do")
        return False
    print(f"model: downloading {plan['source']}:{plan['repo']}@{plan['revision']} into {target}")
    target.mkdir(parents=True, exist_ok=True)
    _fetch_model(plan)
    if not (target / "config.json").is_file():
        raise SystemExit(f"download: {target}/config.json is missing after the download; is model.*Repo right?")
    (target / MARKER).write_text(json.dumps(want, sort_keys=True))
    return True


def download_datasets(plan: dict) -> int:
    """Cache each Hub dataset once (a marker per repo and hub); return how many were fetched.

    Each dataset names its hub (`source`): the one LLaMA-Factory will load it from, which is
    not always the model's (a dataset with only an hf_hub_url comes from the Hugging Face Hub
    even with model.source=modelscope)."""
    done_dir = Path(plan["markers"])
    fetched = 0
    for ds in plan["datasets"]:
        source = ds.get("source", plan["source"])
        suffix = ".done" if source == "huggingface" else f".{source}.done"
        marker = done_dir / (ds["repo"].replace("/", "--") + suffix)
        if marker.is_file():
            print(f"dataset: {source}:{ds['repo']} already cached, nothing to do")
            continue
        print(f"dataset: caching {source}:{ds['repo']}")
        if source == "huggingface":
            from huggingface_hub import snapshot_download

            snapshot_download(repo_id=ds["repo"], repo_type="dataset", token=os.environ.get("HF_TOKEN") or None)
        elif source == "modelscope":
            from modelscope import snapshot_download

            snapshot_download(ds["repo"], repo_type="dataset")
        else:
            raise SystemExit(f"download: unknown hub {source!r} of dataset {ds['repo']}")
        done_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text("")
        fetched += 1
    return fetched


def seed_files(plan: dict) -> int:
    """Copy local dataset files (e.g. identity.json) from the image's LLaMA-Factory data dir."""
    data_dir, image_dir = Path(plan["dataDir"]), Path(plan["imageDataDir"])
    copied = 0
    for name in plan["files"]:
        dest = data_dir / name
        if dest.exists():
            print(f"file: {dest} present, nothing to do")
            continue
        src = image_dir / name
        if not src.is_file():
            print(f"file: {dest} is missing and the image has no {src}: upload it to the PVC before training")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        print(f"file: copied {src} to {dest}")
        copied += 1
    return copied


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[1]).read_text())
    download_model(plan["model"])
    if plan.get("datasets"):
        download_datasets(plan["datasets"])
    seed_files(plan["files"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
