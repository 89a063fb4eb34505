#!/usr/bin/env python3
"""A local Kubernetes control plane with simulated GPU nodes, from the binaries that
scripts/k8s/build.py builds: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok, started directly with the flags envtest and kwokctl use, on loopback only.

- Free ports on 127.0.0.1, everything in one temp dir (PKI made with openssl, kubeconfig,
  data, one log per component).
- Stopped by the PIDs it started (SIGTERM, then SIGKILL), on exit, on failure and on Ctrl-C.
- Nodes from scripts/k8s/nodes.yaml (kwok keeps them Ready; kwok.yaml says what it simulates),
  a default StorageClass with a pool of pre-made PersistentVolumes that the controller-manager's
  binder binds claims to (nothing provisions or mounts storage).
- A component that does not come up ends the start with one message and its log's tail.

    python scripts/k8s/cluster.py up [--minor 1.34]   # prints KUBECONFIG=…, runs until Ctrl-C
    python scripts/k8s/cluster.py up -- pytest -m cluster tests/cluster   # runs a command on it

The cluster tier's pytest fixture (tests/cluster/conftest.py) uses ControlPlane directly.
KEEP_CLUSTER_DIR=1 keeps the temp dir (logs, etcd data, kubeconfig) after the stop.

One file over 400 lines on purpose: it runs by its path (make cluster, the tier's fixture)
beside build.py, and its parts (PKI, ports, components, nodes, storage, stop) are one start-up
sequence read top to bottom.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402

HERE = build.HERE
NODES_FILE = HERE / "nodes.yaml"
KWOK_CONFIG = HERE / "kwok.yaml"
FAKE_NODE = ("kwok.x-k8s.io/node", "fake")
STORAGE_CLASS = "standard"
PV_POOL = 40
PV_SIZE = "4Ti"
SERVICE_CIDR = "10.96.0.0/16"


class StartError(RuntimeError):
    """A component did not come up: one message with what failed and its log's tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or "(empty log)"


def node_objects(spec: dict) -> list[dict]:
    """Node objects of nodes.yaml, managed by kwok (its annotation), with their capacity."""
    out = []
    for n in spec["nodes"]:
        capacity = {"cpu": str(n["cpu"]), "memory": str(n["memory"]), "pods": "110"}
        labels = {"kubernetes.io/hostname": n["name"], "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}
        if n["gpus"]:
            capacity["nvidia.com/gpu"] = str(n["gpus"])
            labels |= {
                "nvidia.com/gpu.product": n["product"],
                "nvidia.com/gpu.count": str(n["gpus"]),
                "nvidia.com/gpu.memory": str(n["gpuMemoryMiB"]),
            }
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": n["name"], "labels": labels, "annotations": {FAKE_NODE[0]: FAKE_NODE[1]}},
                "status": {"capacity": capacity, "allocatable": capacity},
            }
        )
    return out


def storage_objects(pool: int = PV_POOL, size: str = PV_SIZE) -> list[dict]:
    """The default StorageClass and its pool of PersistentVolumes (bound by the PV controller
    like any statically provisioned volume; Retain, so a released one is never reused)."""
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate",
        "reclaimPolicy": "Retain",
    }
    pvs = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"pool-{i:03d}", "labels": {"pool": "kwok"}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": STORAGE_CLASS,
                "hostPath": {"path": f"/nonexistent/kwok-pool-{i:03d}"},
            },
        }
        for i in range(pool)
    ]
    return [sc, *pvs]


class ControlPlane:
    """One control plane; a context manager. `kubeconfig` is valid after start()."""

    def __init__(self, minor: str = build.DEFAULT, workdir: str | None = None, log: Callable = print, kubectl: str | None = None):
        self.minor = minor
        self.version = build.kube_version(minor)
        self.bin = build.bin_dir(minor)
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=f"llf-k8s-{minor}-"))
        self.log = log
        self.kubectl = kubectl or self._find_kubectl()
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.kubeconfig = self.dir / "kubeconfig"
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Path:
        missing = [
            n for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok") if not (self.bin / n).is_file()
        ]
        if missing:
            raise StartError(
                f"{', '.join(missing)} not built in {self.bin}: run `python scripts/k8s/build.py {self.minor}` (or `make k8s`)"
            )
        if not shutil.which("openssl"):
            raise StartError("openssl not found: the control plane's certificates are made with it (Debian: apt-get install openssl)")
        atexit.register(self.stop)
        started = time.monotonic()
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._pki()
            self._etcd()
            self._apiserver()
            self._write_kubeconfig()
            self._controllers()
            self._kwok()
            self._objects()
        except BaseException:
            self.stop()
            raise
        self.log(
            f"k8s {self.version}: control plane up in {time.monotonic() - started:.1f}s "
            f"(https://127.0.0.1:{self.ports['apiserver']}, dir {self.dir})"
        )
        return self.kubeconfig

    def stop(self) -> None:
        """Stop every process this object started, by its PID, newest first."""
        if self._stopped:
            return
        self._stopped = True
        for _name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc in reversed(list(self.procs.items())):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_dir and not os.environ.get("KEEP_CLUSTER_DIR"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self, lines: int = 30) -> str:
        """The tail of every component's log (for a failure report)."""
        return "\n".join(
            f"--- {name} (pid {p.pid}, {'running' if p.poll() is None else f'exit {p.returncode}'}) "
            f"---\n{log_tail(self.dir / 'logs' / f'{name}.log', lines)}"
            for name, p in self.procs.items()
        )

    # -- pieces --------------------------------------------------------------------------
    def _run(self, name: str, argv: list[str]) -> None:
        out = open(self.dir / "logs" / f"{name}.log", "wb")
        try:
            self.procs[name] = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir, start_new_session=True
            )
        except OSError as e:
            raise StartError(f"{name} did not start: {e}") from e
        finally:
            out.close()

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise StartError(
                    f"{name} exited with {proc.returncode} before {what}; last lines of its log:\n"
                    f"{log_tail(self.dir / 'logs' / f'{name}.log')}"
                )
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.2)
        raise StartError(
            f"{name}: {what} did not happen within {timeout:.0f}s; last lines of its log:\n{log_tail(self.dir / 'logs' / f'{name}.log')}"
        )

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(["openssl", *args], cwd=self.dir / "pki", capture_output=True, text=True)
        if proc.returncode:
            raise StartError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()[-800:]}")

    def _pki(self) -> None:
        """A CA, the API server's serving certificate (127.0.0.1, localhost), an admin client
        certificate (group system:masters) and the service-account signing key."""
        pki = self.dir / "pki"
        pki.mkdir()
        days = "7"
        self._openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            days,
            "-subj",
            "/CN=llf-kwok-ca",
        )
        (pki / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
            "extendedKeyUsage=serverAuth\n"
        )
        (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
        for name, subj, ext in (
            ("apiserver", "/CN=kube-apiserver", "server.ext"),
            ("admin", "/O=system:masters/CN=kubernetes-admin", "client.ext"),
        ):
            self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj)
            self._openssl(
                "x509",
                "-req",
                "-in",
                f"{name}.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                f"{name}.crt",
                "-days",
                days,
                "-extfile",
                ext,
            )
        self._openssl("genrsa", "-out", "sa.key", "2048")
        self._openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")

    def _etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.ports["etcd"] = client
        url = f"http://127.0.0.1:{client}"
        self._run(
            "etcd",
            [
                str(self.bin / "etcd"),
                "--name",
                "kwok",
                "--data-dir",
                str(self.dir / "etcd"),
                "--listen-client-urls",
                url,
                "--advertise-client-urls",
                url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"kwok=http://127.0.0.1:{peer}",
                "--listen-metrics-urls",
                "",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                return json.load(r).get("health") == "true"

        self._wait("etcd", healthy, 30, f"answering on {url}/health")

    def _ssl(self) -> ssl.SSLContext:
        pki = self.dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def _apiserver(self) -> None:
        port = free_port()
        self.ports["apiserver"] = port
        pki = self.dir / "pki"
        self._run(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                "--advertise-address=127.0.0.1",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                # The `kubernetes` Service's endpoint would be 127.0.0.1, which EndpointSlices refuse.
                "--endpoint-reconciler-type=none",
                f"--cert-dir={pki}",
                "--profiling=false",
                "--v=1",
            ],
        )
        url = f"https://127.0.0.1:{port}/readyz"
        ctx = self._ssl()

        def ready() -> bool:
            with urllib.request.urlopen(url, timeout=3, context=ctx) as r:
                return r.status == 200

        self._wait("kube-apiserver", ready, 90, f"answering on {url}")

    def _write_kubeconfig(self) -> None:
        pki = self.dir / "pki"
        b64 = lambda name: base64.b64encode((pki / name).read_bytes()).decode()  # noqa: E731
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "kwok",
            "clusters": [
                {
                    "name": "kwok",
                    "cluster": {"server": f"https://127.0.0.1:{self.ports['apiserver']}", "certificate-authority-data": b64("ca.crt")},
                }
            ],
            "users": [{"name": "admin", "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}}],
            "contexts": [{"name": "kwok", "context": {"cluster": "kwok", "user": "admin"}}],
        }
        self.kubeconfig.write_text(yaml.safe_dump(cfg))
        self.kubeconfig.chmod(0o600)

    def _controllers(self) -> None:
        pki, kc = self.dir / "pki", str(self.kubeconfig)
        self._run(
            "kube-controller-manager",
            [
                str(self.bin / "kube-controller-manager"),
                f"--kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=true",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=false",
                "--controllers=*",
                "--v=1",
            ],
        )
        self._run(
            "kube-scheduler",
            [
                str(self.bin / "kube-scheduler"),
                f"--kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=true",
                "--v=1",
            ],
        )
        # Each holds its leader lease once it runs; the service-account controller then makes
        # the default ServiceAccount that admission requires of every pod.
        for name in ("kube-controller-manager", "kube-scheduler"):
            self._wait(name, lambda n=name: self._kubectl_ok("get", "lease", "-n", "kube-system", n), 60, "taking its leader lease")
        self._wait(
            "kube-controller-manager", lambda: self._kubectl_ok("get", "serviceaccount", "default"), 60, "making the default ServiceAccount"
        )

    def _kwok(self) -> None:
        self._run(
            "kwok",
            [
                str(self.bin / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={KWOK_CONFIG}",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE[0]}={FAKE_NODE[1]}",
                # Node and pod addresses are only written into status: nothing connects to them.
                "--node-ip=127.0.0.1",
                "--server-address=",
                # Node leases keep the controller-manager from marking the nodes NotReady.
                "--node-lease-duration-seconds=40",
                "--v=INFO",
            ],
        )

    def _objects(self) -> None:
        nodes = node_objects(yaml.safe_load(NODES_FILE.read_text()))
        docs = nodes + storage_objects()
        proc = subprocess.run(
            [self.kubectl, "--kubeconfig", str(self.kubeconfig), "create", "-f", "-"],
            input="\n---\n".join(yaml.safe_dump(d) for d in docs),
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            raise StartError(f"creating the nodes and volumes failed: {proc.stderr.strip()[-1500:]}")
        names = [n["metadata"]["name"] for n in nodes]

        def all_ready() -> bool:
            out = self._kubectl("get", "nodes", "-o", "json")
            ready = {
                n["metadata"]["name"]
                for n in json.loads(out)["items"]
                for c in n.get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            }
            return set(names) <= ready

        self._wait("kwok", all_ready, 60, f"nodes {', '.join(names)} Ready")

    # -- kubectl ---------------------------------------------------------------------------
    @staticmethod
    def _find_kubectl() -> str:
        pinned = build.TOOLS / "bin" / "kubectl"
        found = str(pinned) if pinned.exists() else shutil.which("kubectl")
        if not found:
            raise StartError("no kubectl: run `make setup` (pinned .tools/bin/kubectl)")
        return found

    def _kubectl(self, *args: str) -> str:
        return subprocess.run(
            [self.kubectl, "--kubeconfig", str(self.kubeconfig), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def _kubectl_ok(self, *args: str) -> bool:
        try:
            self._kubectl(*args)
            return True
        except subprocess.CalledProcessError:
            return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up"])
    parser.add_argument("--minor", default=os.environ.get("K8S_MINOR", build.DEFAULT), choices=build.MINORS)
    argv = sys.argv[1:] if argv is None else argv
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.command = command  # run with KUBECONFIG set, then stop
    plane = ControlPlane(args.minor)
    # Ctrl-C and SIGTERM end the run through stop(), which stops the PIDs this process started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        kubeconfig = plane.start()
    except (StartError, build.BuildError) as e:
        print(f"scripts/k8s/cluster.py: {e}", file=sys.stderr)
        return 1
    try:
        if args.command:
            return subprocess.run(args.command, env={**os.environ, "KUBECONFIG": str(kubeconfig)}).returncode
        print(f"KUBECONFIG={kubeconfig}\n(Ctrl-C stops it)", flush=True)
        while all(p.poll() is None for p in plane.procs.values()):
            time.sleep(1)
        print(f"a component exited:\n{plane.logs()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
