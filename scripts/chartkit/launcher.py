"""The command a T9k DeepSpeedJob's launcher worker runs, rebuilt from the
rendered object: what the controller does with `spec.config` (slotsPerWorker,
localRank, otherArgs, run) and the hostfile it writes. The GPU proof runs this
command line; the offline tests pin it."""

from __future__ import annotations

import sys


def hostfile(dsj: dict, hosts: list[str] | None = None) -> str:
    """The hostfile the controller writes: one line per worker, slots = GPUs per worker."""
    replicas = dsj["spec"]["worker"].get("replicas", 1)
    slots = dsj["spec"]["config"]["slotsPerWorker"]
    names = hosts or [f"{dsj['metadata']['name']}-worker-{i}" for i in range(replicas)]
    return "".join(f"{h} slots={slots}\n" for h in names)


def command(dsj: dict, hostfile_path: str, python: str = sys.executable) -> list[str]:
    """`deepspeed --hostfile … [--no_local_rank] <otherArgs> --module|<script> <args>`,
    through the runner module so that no `deepspeed` script needs to be on PATH."""
    cfg = dsj["spec"]["config"]
    cmd = [python, "-m", "deepspeed.launcher.runner", f"--hostfile={hostfile_path}"]
    if cfg.get("localRank", True) is False:
        cmd.append("--no_local_rank")
    cmd += list(cfg.get("otherArgs", []))
    run = cfg["run"]
    if "module" in run:
        cmd += ["--module", *run["module"]]
    elif "python" in run:
        cmd += list(run["python"])
    else:
        cmd += ["--no_python", *run["exec"]]
    return cmd
