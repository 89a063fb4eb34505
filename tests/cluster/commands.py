"""Command lines of the cluster tier, and the decisions around them that need no cluster.

Every helm and kubectl call the tier makes is built here as an argv list, so that
tests/cluster/test_commands.py checks the exact command lines (and that every flag exists in
the pinned Helm 3 and 4 and kubectl) without a cluster. Also here: which kubeconfig the tier
uses, why it skips, which tools it runs, and which CRDs it may apply.

Environment (all optional):
  KUBECONFIG          the cluster (pytest-helm-charts' --kubeconfig option wins over it)
  CLUSTER_HELM_MAJOR  3 (default) or 4: which pinned Helm (.tools/bin/helm3, helm4) installs
  CLUSTER_KUBECTL     kubectl to run (default: the pinned .tools/bin/kubectl, else PATH)
  CLUSTER_REQUIRED    1: an unreachable cluster fails the tier instead of skipping it
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chartkit.chart import ROOT

CRD_FILES = (
    ROOT / "tests" / "crds" / "deepspeedjobs.batch.tensorstack.dev.yaml",
    ROOT / "tests" / "crds" / "notebooks.tensorstack.dev.yaml",
)
# Annotation scripts/gen_crds.py puts on the CRDs it generates: a CRD on the cluster without it
# belongs to someone else (a real T9k installation) and is never overwritten.
GENERATED_BY = "llama-factory.chart/generated-by"
FIELD_MANAGER = "llama-factory-e2e"
HELM_MAJORS = ("3", "4")
CI_WORKSPACE = "values/ci-workspace.yaml"
CI_SERVE = "values/ci-serve.yaml"


# --- kubeconfig and skipping ---------------------------------------------------------------


def kubeconfig_paths(option: str | None, env: Mapping[str, str]) -> list[str]:
    """The kubeconfig files the tier uses: pytest-helm-charts' --kubeconfig option, else
    $KUBECONFIG (a path list, as kubectl reads it). Empty: no cluster was named."""
    raw = option or env.get("KUBECONFIG", "")
    return [p for p in raw.split(os.pathsep) if p.strip()]


def one_line(text: str, limit: int = 160) -> str:
    """Text squeezed onto one line of at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def unavailable_reason(paths: Sequence[str], probe: Callable[[Sequence[str]], object]) -> str | None:
    """Why the cluster tier cannot run (one line), or None when the API server answers.
    `probe` asks the API server something cheap and raises when it does not answer."""
    if not paths:
        return "cluster tier: KUBECONFIG is not set (scripts/kind_e2e.sh makes a kind cluster and runs it)"
    missing = [p for p in paths if not Path(p).expanduser().is_file()]
    if len(missing) == len(paths):
        return f"cluster tier: KUBECONFIG={os.pathsep.join(paths)} names no existing file"
    try:
        probe([p for p in paths if p not in missing])
    except Exception as e:  # noqa: BLE001 - any failure to answer means: no cluster
        cause = e.reason if isinstance(getattr(e, "reason", None), BaseException) else e  # urllib3 wraps it
        text = re.sub(r"^<[^>]* object at 0x[0-9a-f]+>: ", "", str(cause))
        return one_line(
            f"cluster tier: the API server of KUBECONFIG={os.pathsep.join(paths)} does not answer ({type(cause).__name__}: {text})", 240
        )
    return None


def required(env: Mapping[str, str]) -> bool:
    """CLUSTER_REQUIRED=1 (scripts/kind_e2e.sh sets it): no cluster is a failure, not a skip."""
    return env.get("CLUSTER_REQUIRED", "") in ("1", "true", "yes")


# --- tools ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """The binaries and kubeconfig every command of the tier uses."""

    helm: str
    kubectl: str
    kubeconfig: str
    helm_major: str = "3"

    def run(
        self, argv: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess:
        """Run a command; a failure raises AssertionError with the command and its output."""
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if check and proc.returncode != 0:
            raise AssertionError(format_failure(argv, proc.returncode, proc.stdout, proc.stderr))
        return proc


def helm_major(env: Mapping[str, str]) -> str:
    major = env.get("CLUSTER_HELM_MAJOR", "3") or "3"
    if major not in HELM_MAJORS:
        raise ValueError(f"CLUSTER_HELM_MAJOR={major!r}: must be one of {', '.join(HELM_MAJORS)}")
    return major


def kubectl_path(env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which) -> str:
    """CLUSTER_KUBECTL, else the pinned .tools/bin/kubectl, else kubectl on PATH."""
    if env.get("CLUSTER_KUBECTL"):
        return env["CLUSTER_KUBECTL"]
    pinned = ROOT / ".tools" / "bin" / "kubectl"
    if pinned.exists():
        return str(pinned)
    found = which("kubectl")
    if not found:
        raise FileNotFoundError("no kubectl: run `make setup` (pinned .tools/bin/kubectl) or set CLUSTER_KUBECTL")
    return found


def format_failure(argv: Sequence[str], rc: int, stdout: str, stderr: str, tail: int = 4000) -> str:
    """Message of a failed command: the command line, its exit status and the end of its output."""
    out = [f"command failed (exit {rc}): {shlex.join(str(a) for a in argv)}"]
    for name, text in (("stderr", stderr), ("stdout", stdout)):
        text = (text or "").strip()
        if text:
            out.append(f"--- {name} (last {tail} characters) ---\n{text[-tail:]}")
    return "\n".join(out)


def unique_name(prefix: str, token: Callable[[int], str] = secrets.token_hex) -> str:
    """A namespace name no earlier run left behind: <prefix>-<6 hex digits>."""
    return f"{prefix}-{token(3)}"


def release_name(*parts: str) -> str:
    """A Helm release name from parts (preset files lose .yaml), e.g. dry-8b-2xdp-merge-sft."""
    name = "-".join(p.removesuffix(".yaml").replace(".", "-").replace("_", "-").lower() for p in parts)
    if len(name) > 53:
        raise ValueError(f"release name {name!r} is longer than Helm's 53 characters")
    return name


# --- helm ----------------------------------------------------------------------------------


def values_args(values: Iterable[str] = (), sets: Iterable[str] = (), set_json: Iterable[str] = ()) -> list[str]:
    """-f / --set / --set-json arguments. Numbers that are not integers must go through
    --set-json: Helm's --set keeps 2e-5 a string, which the values schema rejects."""
    args: list[str] = []
    for v in values:
        args += ["-f", str(ROOT / v)]
    for s in sets:
        args += ["--set", s]
    for s in set_json:
        args += ["--set-json", s]
    return args


def _helm(tools: Tools, *args: str, namespace: str | None = None) -> list[str]:
    argv = [tools.helm, *args, "--kubeconfig", tools.kubeconfig]
    if namespace:
        argv += ["--namespace", namespace]
    return argv


def helm_install(
    tools: Tools,
    release: str,
    namespace: str,
    *,
    values: Iterable[str] = (),
    sets: Iterable[str] = (),
    set_json: Iterable[str] = (),
    dry_run: str | None = None,
    timeout: str = "10m",
) -> list[str]:
    """`helm install` of the chart; dry_run="server" checks it against the API server and
    creates nothing. No --wait: the tier waits itself, with messages that say why not."""
    if dry_run not in (None, "server"):
        raise ValueError("dry_run must be None or 'server' (a client dry run needs no cluster)")
    argv = _helm(tools, "install", release, str(ROOT), namespace=namespace)
    argv += values_args(values, sets, set_json) + ["--timeout", timeout]
    if dry_run:
        argv.append(f"--dry-run={dry_run}")
    return argv


def helm_upgrade(
    tools: Tools,
    release: str,
    namespace: str,
    *,
    values: Iterable[str] = (),
    sets: Iterable[str] = (),
    set_json: Iterable[str] = (),
    timeout: str = "10m",
) -> list[str]:
    """`helm upgrade` with the given values only (no --reuse-values: what the test says is
    what the release gets)."""
    return _helm(tools, "upgrade", release, str(ROOT), namespace=namespace) + values_args(values, sets, set_json) + ["--timeout", timeout]


def helm_rollback(tools: Tools, release: str, namespace: str, revision: int, timeout: str = "10m") -> list[str]:
    return _helm(tools, "rollback", release, str(revision), namespace=namespace) + ["--timeout", timeout]


def helm_uninstall(tools: Tools, release: str, namespace: str, timeout: str = "10m", wait: bool = True) -> list[str]:
    """`helm uninstall --wait`: returns once the release's objects are gone (bare --wait is a
    boolean in Helm 3 and the "watcher" strategy in Helm 4)."""
    return _helm(tools, "uninstall", release, namespace=namespace) + (["--wait"] if wait else []) + ["--timeout", timeout]


def helm_status(tools: Tools, release: str, namespace: str) -> list[str]:
    return _helm(tools, "status", release, namespace=namespace) + ["--output", "json"]


def helm_test(tools: Tools, release: str, namespace: str, timeout: str = "10m", logs: bool = True) -> list[str]:
    """`helm test`; with logs, the test pods' logs (which need a node that runs containers)."""
    return _helm(tools, "test", release, namespace=namespace) + (["--logs"] if logs else []) + ["--timeout", timeout]


def helm_history(tools: Tools, release: str, namespace: str) -> list[str]:
    return _helm(tools, "history", release, namespace=namespace) + ["--output", "json"]


def helm_template(
    tools: Tools, release: str, namespace: str, *, values: Iterable[str] = (), sets: Iterable[str] = (), set_json: Iterable[str] = ()
) -> list[str]:
    """What an install with the same arguments creates, rendered locally (no cluster)."""
    return [tools.helm, "template", release, str(ROOT), "--namespace", namespace] + values_args(values, sets, set_json)


# --- kubectl -------------------------------------------------------------------------------


def kubectl_apply_server_side(tools: Tools, files: Iterable[Path | str]) -> list[str]:
    """Server-side apply (the CRDs are too large for the last-applied annotation of a
    client-side apply) under the tier's own field manager, without --force-conflicts."""
    argv = [tools.kubectl, "--kubeconfig", tools.kubeconfig, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}"]
    for f in files:
        argv += ["-f", str(f)]
    return argv


def kubectl_create_dry_run(tools: Tools, namespace: str) -> list[str]:
    """Send a manifest on stdin to the API server as a server-side dry run with strict field
    validation: admission, defaulting and the CRD schemas judge every object, nothing is kept."""
    return [
        tools.kubectl,
        "--kubeconfig",
        tools.kubeconfig,
        "create",
        "--namespace",
        namespace,
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
    ]


def kubectl_apply_manifest(tools: Tools, namespace: str, field_manager: str) -> list[str]:
    """Server-side apply of a manifest on stdin (as a GitOps controller syncs a rendered
    folder), printing what the server kept as a JSON list."""
    return [
        tools.kubectl,
        "--kubeconfig",
        tools.kubeconfig,
        "apply",
        "--namespace",
        namespace,
        "--server-side",
        f"--field-manager={field_manager}",
        "--validate=strict",
        "--output=json",
        "--show-managed-fields",
        "-f",
        "-",
    ]


def kubectl_diff_manifest(tools: Tools, namespace: str, field_manager: str) -> list[str]:
    """What a server-side apply of the manifest on stdin would change (exit 0: nothing)."""
    return [
        tools.kubectl,
        "--kubeconfig",
        tools.kubeconfig,
        "diff",
        "--namespace",
        namespace,
        "--server-side",
        f"--field-manager={field_manager}",
        "-f",
        "-",
    ]


def kubectl_delete_manifest(tools: Tools, namespace: str) -> list[str]:
    return [
        tools.kubectl,
        "--kubeconfig",
        tools.kubeconfig,
        "delete",
        "--namespace",
        namespace,
        "--ignore-not-found",
        "--wait=false",
        "-f",
        "-",
    ]


def kubectl_flatten(kubectl: str) -> list[str]:
    """One self-contained kubeconfig from the files of $KUBECONFIG (pytest-helm-charts reads one file)."""
    return [kubectl, "config", "view", "--flatten", "--raw"]


# --- CRDs ----------------------------------------------------------------------------------


def crd_plan(ours: Sequence[dict], live: Mapping[str, dict | None]) -> tuple[list[str], dict[str, str]]:
    """Which of our CRDs to apply (absent, or applied by this repo before), and which to leave
    alone with the reason (installed by someone else: a T9k cluster's own CRD wins)."""
    apply, keep = [], {}
    for crd in ours:
        name = crd["metadata"]["name"]
        have = live.get(name)
        if have is None or GENERATED_BY in ((have.get("metadata") or {}).get("annotations") or {}):
            apply.append(name)
        else:
            keep[name] = f"{name} is installed and was not generated by this repo (no {GENERATED_BY} annotation); left as it is"
    return apply, keep
