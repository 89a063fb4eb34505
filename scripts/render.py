#!/usr/bin/env python3
"""Render every stage of a preset, validate it, and print a one-screen summary.

Each stage is rendered as its own release (llama31-<stage>), the way the
README walks the pipeline, into out/<preset>/<stage>.yaml. Every object is
validated strictly against the Kubernetes schemas of the oldest and newest
supported versions and the T9k schemas in tests/schemas/; names must be unique
across the releases. No cluster is needed.

    python scripts/render.py                      # values/8b-2xdp.yaml
    python scripts/render.py values/70b-4xdp.yaml -f values/team-example.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from chartkit import helm, k8s, pipeline
from chartkit.chart import ROOT, STAGES


def checkpointing(cfg: dict) -> str:
    """The rendered config's gradient checkpointing: off, on, or on for the first K decoder layers
    (checkpointed_layers, which the chart's launcher applies)."""
    if cfg.get("disable_gradient_checkpointing"):
        return "off"
    k = cfg.get("checkpointed_layers")
    return "on" if k is None else f"on for the first {k} decoder layers"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", nargs="?", default="values/8b-2xdp.yaml")
    ap.add_argument("-f", "--values", action="append", default=[], help="overlay values file (repeatable)")
    ap.add_argument("--helm", choices=helm.MAJORS, default="3", help="Helm major version")
    ap.add_argument("--out", default="out", help="output folder")
    args = ap.parse_args(argv)

    files = (args.preset, *args.values)
    out = ROOT / args.out / Path(args.preset).stem
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    names: Counter = Counter()
    rows = []
    training = []  # the batch the chart chose per training stage (null values follow the card)
    for stage in STAGES:
        rel = helm.Release(values=files, sets=(f"stages={{{stage}}}",), name=f"llama31-{stage}", major=args.helm)
        try:
            text = helm.run_template(rel)
        except helm.RenderError as e:
            problems.append(f"{stage}: helm template failed:\n{e.stderr}")
            continue
        (out / f"{stage}.yaml").write_text(text)
        objects = helm.render(rel)
        for o in objects:
            names[(o["kind"], o["metadata"]["name"])] += 1
            for version in k8s.K8S_VERSIONS:
                try:
                    errs = k8s.errors(o, version)
                except k8s.MissingSchema as e:
                    errs = [str(e)]
                problems += [f"{stage}: {o['kind']}/{o['metadata']['name']} (Kubernetes {version}): {m}" for m in errs]
        io = pipeline.stage_io(stage, objects)
        if stage in ("sft", "dpo"):
            cfg = pipeline.config_data(objects, "train.yaml")
            dj = next(o for o in objects if o["kind"] == "DeepSpeedJob")
            memory = dj["metadata"].get("annotations", {}).get("llama-factory/worst-case-gpu-memory", "")
            training.append(
                f"{stage:<10} micro batch {cfg['per_device_train_batch_size']} x "
                f"{cfg['gradient_accumulation_steps']} accumulation per GPU, gradient checkpointing "
                f"{checkpointing(cfg)}, cutoff {cfg['cutoff_len']}; "
                f"worst case {memory.split(' (')[0]}"
            )
        kinds = Counter(o["kind"] for o in objects)
        rows.append((stage, ", ".join(f"{n}×{k}" if n > 1 else k for k, n in sorted(kinds.items())), io))
    problems += [
        f"{kind}/{name} is rendered by {n} releases" for (kind, name), n in names.items() if n > 1 and kind != "PersistentVolumeClaim"
    ]

    mount = "/t9k/mnt/"
    short = lambda p: p.removeprefix(mount)  # noqa: E731
    print(f"preset {' + '.join(files)}  (Helm {args.helm}, manifests in {out.relative_to(ROOT)}/)")
    print(f"{'stage':<10} {'GPUs':>4}  reads -> writes  [objects]")
    for stage, kinds, io in rows:
        flow = f"{' + '.join(map(short, io.reads)) or '-'} -> {', '.join(map(short, io.writes)) or '-'}"
        print(f"{stage:<10} {io.gpus:>4}  {flow}  [{kinds}]")
    print(f"paths are relative to the PVC mounted at {mount.rstrip('/')}")
    print(*training, sep="\n")
    if problems:
        print(f"\n{len(problems)} problem(s):", *problems, sep="\n  ")
        return 1
    print(f"valid: every object against Kubernetes {' and '.join(k8s.K8S_VERSIONS)} and the T9k schemas; names unique across stages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
