#!/usr/bin/env python3
"""Mutation self-check of the offline test suite (run by hand, not in CI).

Each mutant is one plausible fault a reasonable change to the chart could
introduce - a small patch (one string replaced) against templates/ or
values - mostly of the kind that shows only under values a user would set
(another port, mount path, method, several workers or replicas, adapters
served). For each git ref given, the script exports that commit's tree
(chart and harness alike) into a temporary folder, checks that the unmutated
suite passes there, then applies each mutant alone and runs the suite; a
mutant is caught when the suite fails. It prints a table and a summary per
ref, and exits 1 when a baseline fails or a mutant does not apply.

    .venv/bin/python scripts/mutation_check.py                  # HEAD
    .venv/bin/python scripts/mutation_check.py bdf1d85 HEAD     # before / after
    .venv/bin/python scripts/mutation_check.py --only 3,7 HEAD  # some mutants
    .venv/bin/python scripts/mutation_check.py --json out/mutation.json bdf1d85 HEAD

The suite is `pytest -m "not cluster" -x` over tests/, without the peer tier
(its LLaMA-Factory/DeepSpeed stack may be absent), the cluster tier and
checkov (its own venv); --pytest-args replaces that selection. The Helm
binaries are the repository's own (.tools/, linked into each export).

The mutants are not a corpus the tests were written against: none of the
tests names them, and a fault is caught only through a general property.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
DEFAULT_ARGS = [
    "-m",
    "not cluster",
    "-x",
    "-q",
    "-p",
    "no:cacheprovider",
    "--ignore=tests/peer",
    "--ignore=tests/cluster",
    "--ignore=tests/test_checkov.py",
    "--ignore=tests/gpu",
]


@dataclass(frozen=True)
class Mutant:
    file: str  # a path, or a glob naming the one file that holds `old`
    old: str
    new: str
    why: str


MUTANTS = [
    Mutant(
        "templates/_*.tpl",
        "containerPort: 8000",
        "containerPort: {{ $serving.service.port | int }}",
        "container port taken from the Service port (equal only at the default 8000)",
    ),
    Mutant(
        "templates/serve.yaml",
        '"tensor-parallel-size" $serving.tensorParallelSize',
        '"tensor-parallel-size" $serving.replicas',
        "--tensor-parallel-size from the replica count (both 1 by default)",
    ),
    Mutant(
        "templates/serve.yaml",
        '"resources" $serving.resources "gpus" $serving.tensorParallelSize',
        '"resources" $serving.resources "gpus" $serving.replicas',
        "GPU limit of a replica from the replica count",
    ),
    Mutant("templates/_*.tpl", "path: /health", "path: /healthz", "liveness probe on a route vLLM does not serve"),
    Mutant(
        "templates/serve.yaml",
        '"lora-modules" (printf "%s=%s" $name',
        '"lora-modules" (printf "%s=%s" (base $src.model)',
        "LoRA module served under the base directory's name, not the served model name",
    ),
    Mutant(
        "templates/serve.yaml",
        '{{- include "llama-factory.selectorLabels" $ctx | nindent 4 }}\n  ports:',
        '{{- include "llama-factory.selectorLabels" (dict "root" $ "component" "serving") | nindent 4 }}\n  ports:',
        "Service selector names another component than the Deployment's pods",
    ),
    Mutant(
        "templates/tests/test-serve.yaml",
        ':{{ .Values.serving.service.port }}/v1"',
        ':8000/v1"',
        "helm test calls the default port, not serving.service.port",
    ),
    Mutant("templates/tests/test-serve.yaml", '"$base/completions"', '"$base/complete"', "helm test posts to a route vLLM does not serve"),
    Mutant(
        "templates/_*.tpl",
        '"http://127.0.0.1:8000/v1/models"',
        '"http://127.0.0.1:8000/v1/model"',
        "exec probe (API key set) on a misspelt route",
    ),
    Mutant(
        "templates/_*.tpl",
        "- name: workspace\n  mountPath: {{ $root.Values.storage.mountPath }}",
        "- name: workspace\n  mountPath: /t9k/mnt",
        "PVC mounted at the default path whatever storage.mountPath says",
    ),
    Mutant(
        "templates/_*.tpl",
        "{{- default $root.Values.storage.name $root.Values.storage.existingClaim }}",
        "{{- $root.Values.storage.name }}",
        "storage.existingClaim ignored by the pods",
    ),
    Mutant(
        "templates/_*.tpl",
        "model: {{ $paths.sftModel }}\nadapter: {{ $paths.dpo }}",
        "model: {{ $paths.sftModel }}\nadapter: {{ $paths.sft }}",
        "served DPO adapter is the SFT adapter",
    ),
    Mutant(
        "templates/_*.tpl",
        "  {{- if $volume.readOnly }}\n  readOnly: true",
        "  {{- if not $volume.readOnly }}\n  readOnly: true",
        "extra volumes' readOnly inverted",
    ),
    Mutant(
        "templates/_*.tpl",
        "{{- if and $scheduling.queue (not .t9k) }}\nschedulerName",
        "{{- if and $scheduling.queue .t9k }}\nschedulerName",
        "t9k-scheduler set on T9k pods instead of plain Jobs and the Deployment",
    ),
    Mutant(
        "templates/_*.tpl",
        "  {{- toYaml $value | nindent 2 }}\n  {{- else }}",
        "  value: {{ toJson $value | quote }}\n  {{- else }}",
        "extraEnv valueFrom rendered as a literal value",
    ),
    Mutant(
        "templates/_*.tpl",
        "  {{- if and .rdma .rdma.enabled }}\n  {{ .rdma.resourceName }}: 1\n  {{- end }}\n{{- end }}",
        "{{- end }}",
        "RDMA device requested but not limited",
    ),
    Mutant(
        "templates/_*.tpl",
        "sftModel: {{ ternary $sft ",
        "sftModel: {{ ternary $dpo ",
        "full fine-tuning: DPO reads its own output instead of the SFT model",
    ),
    Mutant(
        "templates/_*.tpl",
        (
            'value: {{ include "llama-factory.abs" (dict "root" $root "path" (include "llama-factory.paths" (dict "root" $root)'
            " | fromYaml).hfHome) | quote }}"
        ),
        'value: {{ printf "/t9k/mnt/%s" (include "llama-factory.paths" (dict "root" $root) | fromYaml).hfHome | quote }}',
        "HF_HOME under the default mount path",
    ),
    Mutant(
        "templates/eval.yaml",
        "{{- if gt (int $eval.gpus) 1 }}",
        "{{- if gt (int $eval.gpus) 2 }}",
        "two eval GPUs without parallelize=True (one GPU idle)",
    ),
    Mutant(
        "templates/merge.yaml",
        '"resources" $merge.resources "gpus" $merge.gpus',
        '"resources" $merge.resources "gpus" 0',
        "merge on GPUs (exportDevice=auto) gets no GPU",
    ),
    Mutant(
        "templates/_*.tpl",
        "{{- if eq (int $training.workers) 1 }}",
        "{{- if le (int $training.workers) 2 }}",
        "two workers launched with --master_addr=127.0.0.1 and no ssh check",
    ),
    Mutant(
        "templates/training.yaml",
        "replicas: {{ $.Values.training.workers | int }}",
        "replicas: {{ $.Values.training.gpusPerWorker | int }}",
        "DeepSpeedJob replicas from GPUs per worker",
    ),
    Mutant(
        "templates/_*.tpl",
        '"target" (include "llama-factory.abs" (dict "root" $root "path" $paths.base))',
        '"target" (printf "/t9k/mnt/%s" $paths.base)',
        "download target under the default mount path",
    ),
    Mutant(
        "templates/workspace-pvc.yaml",
        "  name: {{ .Values.storage.name | quote }}",
        "  name: llama-factory",
        "workspace PVC named by the default, not storage.name",
    ),
    Mutant(
        "values.yaml",
        "    failureThreshold: 60\n",
        "    failureThreshold: 6\n",
        "startup budget of one minute: the probe restarts a pod still loading the model",
    ),
    Mutant(
        "values/8b-2xdp.yaml",
        "  tensorParallelSize: 1",
        "  tensorParallelSize: 3",
        "preset serves with a tensor parallel size that does not divide the KV heads",
    ),
]


def export(ref: str, dest: Path) -> None:
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    # A repository, as a clone is: tests that copy the chart list its files with git.
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    (dest / ".tools" / "bin").mkdir(parents=True)  # a real folder, which .helmignore skips
    for tool in (ROOT / ".tools" / "bin").iterdir():
        (dest / ".tools" / "bin" / tool.name).symlink_to(tool.resolve())


def run_suite(tree: Path, pytest_args: list[str], timeout: int) -> tuple[bool, float, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    t = time.monotonic()
    try:
        p = subprocess.run([str(PYTHON), "-m", "pytest", *pytest_args], cwd=tree, capture_output=True, text=True, env=env, timeout=timeout)
        ok, tail = p.returncode == 0, (p.stdout + p.stderr).strip().splitlines()[-1:]
    except subprocess.TimeoutExpired:
        ok, tail = False, ["timeout"]
    return ok, time.monotonic() - t, tail[0] if tail else ""


def check_ref(ref: str, mutants: list[tuple[int, Mutant]], pytest_args: list[str], timeout: int, skip_baseline: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="mutation-") as d:
        tree = Path(d)
        export(ref, tree)
        if skip_baseline:
            ok, secs, tail = True, 0.0, "not run (--skip-baseline)"
        else:
            ok, secs, tail = run_suite(tree, pytest_args, timeout)
        print(f"[{ref}] baseline: {'passes' if ok else 'FAILS'} in {secs:.0f} s ({tail})", flush=True)
        result = {"ref": ref, "baseline_ok": ok, "baseline_s": round(secs), "mutants": []}
        if not ok:
            return result
        for i, m in mutants:
            # A pattern (templates/_*.tpl: the helper files, one _helpers.tpl in older commits)
            # names the one file of the tree that holds the text.
            paths = [p for p in sorted(tree.glob(m.file)) if m.old in p.read_text()] or [tree / m.file]
            path = paths[0]
            text = path.read_text() if path.exists() else ""
            if len(paths) != 1 or text.count(m.old) != 1:
                print(f"[{ref}] #{i:02d} does not apply ({text.count(m.old)} matches in {m.file})", flush=True)
                result["mutants"].append({"id": i, "applied": False})
                continue
            path.write_text(text.replace(m.old, m.new))
            try:
                passed, secs, tail = run_suite(tree, pytest_args, timeout)
            finally:
                path.write_text(text)
            verdict = "survived" if passed else "caught"
            print(f"[{ref}] #{i:02d} {verdict:8s} {secs:4.0f} s  {m.file}: {m.why}  ({tail})", flush=True)
            result["mutants"].append({"id": i, "applied": True, "caught": not passed, "seconds": round(secs), "tail": tail})
        return result


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("refs", nargs="*", default=["HEAD"], help="git refs whose suite and chart are checked")
    ap.add_argument("--only", help="comma-separated mutant numbers, run in the order given")
    ap.add_argument(
        "--skip-baseline", action="store_true", help="do not re-run the unmutated suite (only when it was just seen to pass at these refs)"
    )
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per suite run")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--pytest-args", help="replaces the default pytest selection (one string, shell-split)")
    args = ap.parse_args(argv)
    mutants = list(enumerate(MUTANTS, 1))
    if args.list:
        for i, m in mutants:
            print(f"#{i:02d} {m.file}: {m.why}")
        return 0
    if args.only:
        by_id = dict(mutants)
        mutants = [(int(x), by_id[int(x)]) for x in args.only.split(",")]
    import shlex

    pytest_args = shlex.split(args.pytest_args) if args.pytest_args else DEFAULT_ARGS
    results = [check_ref(ref, mutants, pytest_args, args.timeout, args.skip_baseline) for ref in args.refs]
    bad = False
    for r in results:
        applied = [m for m in r["mutants"] if m["applied"]]
        caught = sum(m["caught"] for m in applied)
        bad |= not r["baseline_ok"] or len(applied) != len(mutants)
        print(
            f"{r['ref']}: caught {caught} of {len(applied)} mutants" + ("" if r["baseline_ok"] else " (baseline failed: nothing checked)")
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
