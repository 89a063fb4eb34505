"""The cluster tier's reads of the API server (the `kubernetes` client), as plain dicts, and the
comparison of live objects with what `helm template` rendered.

Reads return the objects as the API server writes them (camelCase keys, timestamps as
strings), so the predicates of waits.py and the comparison below see the same shape offline
and against a cluster. A missing object is None (or an empty list), never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# Only the pure part (diff) is used offline; the client is imported where a cluster is used.


def diff(expected: Any, actual: Any, path: str = "", *, exact: bool = False) -> list[str]:
    """Where `actual` (a live object) does not carry `expected` (the render): every key of
    `expected` with the same value, lists element by element. With exact=False, keys that only
    `actual` has are fine (API defaults such as terminationMessagePath); with exact=True
    they are differences too (for custom resources, whose CRDs default nothing). A number and
    the string the API server normalised it to (a quantity: 2 and "2") are equal."""
    where = path or "<root>"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, found {_short(actual)}"]
        out = []
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{path}.{k}: missing (expected {_short(v)})")
            else:
                out += diff(v, actual[k], f"{path}.{k}", exact=exact)
        if exact:
            out += [f"{path}.{k}: unexpected {_short(actual[k])}" for k in actual if k not in expected]
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, found {_short(actual)}"]
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, found {len(actual)}: {_short(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out += diff(e, a, f"{path}[{i}]", exact=exact)
        return out
    if expected == actual and type(expected) is type(actual):
        return []
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and isinstance(actual, str) and str(expected) == actual:
        return []
    if (
        isinstance(expected, (int, float))
        and isinstance(actual, (int, float))
        and not isinstance(expected, bool)
        and not isinstance(actual, bool)
        and expected == actual
    ):
        return []
    return [f"{where}: expected {_short(expected)}, found {_short(actual)}"]


def _short(v: Any, limit: int = 120) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(tools, release: str, namespace: str, **args) -> list[dict]:
    """The objects `helm template` renders for an install with the same arguments."""
    import yaml

    from commands import helm_template

    out = tools.run(helm_template(tools, release, namespace, **args)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


HAND_MADE_PVC = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "llama-factory"},
    "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}},
}


def create_pvc(tools, namespace: str) -> None:
    """The workspace PVC made by hand, as the original example's README had users do."""
    import yaml

    tools.run([tools.kubectl, "--kubeconfig", tools.kubeconfig, "create", "-n", namespace, "-f", "-"], input=yaml.safe_dump(HAND_MADE_PVC))


def by_kind(objects: Sequence[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]


def selector(release: str, component: str | None = None) -> str:
    """Label selector of a release's objects (the chart's standard labels)."""
    sel = f"app.kubernetes.io/instance={release}"
    return sel + (f",app.kubernetes.io/component={component}" if component else "")


class Kube:
    """Reads of one cluster through the `kubernetes` client, as dicts."""

    def __init__(self, kubeconfig_paths: Sequence[str], request_timeout: float = 30):
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=os.pathsep.join(kubeconfig_paths), client_configuration=cfg, persist_config=False)
        cfg.retries = 1
        self._client = client
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.crs = client.CustomObjectsApi(self.api)
        self.ext = client.ApiextensionsV1Api(self.api)
        self.timeout = request_timeout

    @classmethod
    def probe(cls, kubeconfig_paths: Sequence[str]) -> str:
        """The server's version; raises when the API server does not answer within seconds."""
        kube = cls(kubeconfig_paths, request_timeout=5)
        kube.api.configuration.retries = 0
        from kubernetes import client

        return client.VersionApi(kube.api).get_code(_request_timeout=5).git_version

    # -- helpers --
    def _dict(self, obj: Any, kind: str | None = None) -> dict:
        d = self.api.sanitize_for_serialization(obj)
        if kind and not d.get("kind"):
            d["kind"] = kind  # list results carry no kind per item
        return d

    def _get(self, fn, *args, kind: str, **kwargs) -> dict | None:
        try:
            return self._dict(fn(*args, _request_timeout=self.timeout, **kwargs), kind)
        except self._client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def _list(self, fn, *args, kind: str, **kwargs) -> list[dict]:
        items = fn(*args, _request_timeout=self.timeout, **kwargs).items
        return [self._dict(o, kind) for o in items]

    # -- reads --
    def job(self, ns: str, name: str) -> dict | None:
        return self._get(self.batch.read_namespaced_job, name, ns, kind="Job")

    def jobs(self, ns: str, label_selector: str) -> list[dict]:
        return self._list(self.batch.list_namespaced_job, ns, kind="Job", label_selector=label_selector)

    def deployment(self, ns: str, name: str) -> dict | None:
        return self._get(self.apps.read_namespaced_deployment, name, ns, kind="Deployment")

    def pods(self, ns: str, label_selector: str) -> list[dict]:
        return self._list(self.core.list_namespaced_pod, ns, kind="Pod", label_selector=label_selector)

    def nodes(self) -> list[dict]:
        return self._list(self.core.list_node, kind="Node")

    def services(self, ns: str, label_selector: str = "") -> list[dict]:
        return self._list(self.core.list_namespaced_service, ns, kind="Service", label_selector=label_selector)

    def endpoint_slices(self, ns: str, label_selector: str = "") -> list[dict]:
        discovery = self._client.DiscoveryV1Api(self.api)
        return self._list(discovery.list_namespaced_endpoint_slice, ns, kind="EndpointSlice", label_selector=label_selector)

    def configmap(self, ns: str, name: str) -> dict | None:
        return self._get(self.core.read_namespaced_config_map, name, ns, kind="ConfigMap")

    def pvc(self, ns: str, name: str) -> dict | None:
        return self._get(self.core.read_namespaced_persistent_volume_claim, name, ns, kind="PersistentVolumeClaim")

    def events(self, ns: str) -> list[dict]:
        return self._list(self.core.list_namespaced_event, ns, kind="Event")

    def log(self, ns: str, pod: str, tail_lines: int | None = None) -> str:
        kwargs = {"tail_lines": tail_lines} if tail_lines else {}
        return self.core.read_namespaced_pod_log(pod, ns, _request_timeout=self.timeout, **kwargs)

    def crd(self, name: str) -> dict | None:
        return self._get(self.ext.read_custom_resource_definition, name, kind="CustomResourceDefinition")

    def custom(self, ns: str, api_version: str, plural: str, name: str) -> dict | None:
        group, version = api_version.split("/")
        try:
            return self.crs.get_namespaced_custom_object(group, version, ns, plural, name, _request_timeout=self.timeout)
        except self._client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def customs(self, ns: str, api_version: str, plural: str, label_selector: str) -> list[dict]:
        group, version = api_version.split("/")
        out = self.crs.list_namespaced_custom_object(
            group, version, ns, plural, label_selector=label_selector, _request_timeout=self.timeout
        )
        return list(out.get("items") or [])
