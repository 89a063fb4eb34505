"""Strategies of the pass-through nodes the chart copies verbatim into Kubernetes objects
(affinity, tolerations, security contexts, extra volume sources, valueFrom): valid Kubernetes
fragments, values mixed in for collisions with the chart's own, and wrong shapes of what the
templates read inside them. PASSTHROUGH_MODE picks what `strategies.valid` draws there."""

from __future__ import annotations

from hypothesis import strategies as st

from .scalars import DNS_LABEL, KNOWN_KEYS, NAMES, free_json, json_scalars


# Pass-through nodes the chart copies verbatim into Kubernetes objects. The schema
# leaves their validation to Kubernetes ({"type": "object"}), so a small random
# dict there (with the field names Kubernetes uses, wrong shapes and all) makes an
# invalid manifest as often as not. PASSTHROUGH_MODE: "mixed" (the default) draws
# valid Kubernetes fragments and such dicts, "k8s" only the fragments (to hunt other
# bugs while the schema gap stands), "raw" only the dicts.
def _maybe_null(strategy):
    return st.one_of(strategy, st.none())


CAPS = ("ALL", "CHOWN", "NET_BIND_SERVICE", "SYS_PTRACE", "IPC_LOCK", "SETUID", "SETGID")
SECCOMP = st.sampled_from(({"type": "RuntimeDefault"}, {"type": "Unconfined"}))
POD_SC = st.fixed_dictionaries(
    {},
    optional={
        "runAsUser": _maybe_null(st.integers(0, 65535)),
        "runAsGroup": _maybe_null(st.integers(0, 65535)),
        "runAsNonRoot": _maybe_null(st.booleans()),
        "fsGroup": _maybe_null(st.integers(0, 65535)),
        "fsGroupChangePolicy": _maybe_null(st.sampled_from(("OnRootMismatch", "Always"))),
        "seccompProfile": _maybe_null(SECCOMP),
        "supplementalGroups": st.lists(st.integers(0, 65535), max_size=2),
    },
)
CONTAINER_SC = st.fixed_dictionaries(
    {},
    optional={
        "runAsUser": _maybe_null(st.integers(0, 65535)),
        "runAsGroup": st.integers(0, 65535),
        "runAsNonRoot": _maybe_null(st.booleans()),
        "allowPrivilegeEscalation": _maybe_null(st.booleans()),
        "readOnlyRootFilesystem": st.booleans(),
        "privileged": st.booleans(),
        "capabilities": _maybe_null(
            st.fixed_dictionaries(
                {},
                optional={
                    "add": _maybe_null(st.lists(st.sampled_from(CAPS), max_size=2, unique=True)),
                    "drop": _maybe_null(st.lists(st.sampled_from(CAPS), max_size=2, unique=True)),
                },
            )
        ),
        "seccompProfile": _maybe_null(SECCOMP),
    },
)
LABEL_KEY = st.one_of(st.sampled_from(("kubernetes.io/hostname", "nvidia.com/gpu.product", "team")), DNS_LABEL)
TOLERATIONS = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"key": LABEL_KEY, "operator": st.just("Equal"), "value": DNS_LABEL},
            optional={
                "effect": st.sampled_from(("NoSchedule", "NoExecute", "PreferNoSchedule")),
                "tolerationSeconds": st.integers(0, 604800),
            },
        ),
        st.fixed_dictionaries({"operator": st.just("Exists")}, optional={"key": LABEL_KEY}),
    ),
    max_size=2,
)
_MATCH = st.fixed_dictionaries(
    {"key": LABEL_KEY, "operator": st.sampled_from(("In", "NotIn")), "values": st.lists(DNS_LABEL, min_size=1, max_size=2)}
)
AFFINITY = st.one_of(
    st.just({}),
    st.builds(
        lambda m: {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [m]}]}}},
        _MATCH,
    ),
    st.builds(
        lambda w, m: {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": w, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchExpressions": [m]}}}
                ]
            }
        },
        st.integers(1, 100),
        _MATCH,
    ),
)
VOLUME_SOURCE = st.one_of(
    st.sampled_from(({"emptyDir": {}}, {"emptyDir": {"medium": "Memory"}})),
    st.builds(lambda n: {"configMap": {"name": n}}, NAMES),
    st.builds(lambda n: {"secret": {"secretName": n}}, NAMES),
    st.builds(lambda n: {"persistentVolumeClaim": {"claimName": n, "readOnly": True}}, NAMES),
    st.builds(lambda p: {"hostPath": {"path": "/" + p}}, DNS_LABEL),
)
VALUE_FROM = st.one_of(
    st.builds(lambda n, k: {"secretKeyRef": {"name": n, "key": k}}, NAMES, DNS_LABEL),
    st.builds(lambda n, k: {"configMapKeyRef": {"name": n, "key": k, "optional": True}}, NAMES, DNS_LABEL),
    st.builds(
        lambda p: {"fieldRef": {"fieldPath": p}}, st.sampled_from(("metadata.name", "metadata.namespace", "status.podIP", "spec.nodeName"))
    ),
    st.just({"resourceFieldRef": {"resource": "limits.cpu"}}),
)
MOUNT_PATH = st.one_of(
    st.sampled_from(("/t9k/mnt", "/dev/shm", "/etc/llama-factory", "/tmp", "/data", "/data/")),
    st.from_regex(r"/[a-z0-9._-]{1,10}(/[a-z0-9._-]{1,10})?", fullmatch=True),
)

_SC_KEYS = (
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "capabilities",
    "add",
    "drop",
    "seccompProfile",
    "type",
    "privileged",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
)
KNOWN_KEYS.update(
    {
        ("common", "podSecurityContext"): _SC_KEYS,
        ("common", "containerSecurityContext"): _SC_KEYS,
        ("training", "multiWorkerSecurityContext"): _SC_KEYS,
        ("common", "affinity"): (
            "nodeAffinity",
            "podAntiAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms",
            "matchExpressions",
            "key",
            "operator",
            "values",
        ),
        ("common", "tolerations", "*"): ("key", "operator", "value", "effect", "tolerationSeconds"),
        ("common", "extraVolumes", "*", "source"): ("emptyDir", "configMap", "secret", "hostPath", "name", "path", "secretName", "medium"),
        ("common", "extraEnv", "*", "valueFrom"): ("secretKeyRef", "configMapKeyRef", "fieldRef", "name", "key", "fieldPath"),
    }
)

PASSTHROUGH: dict[tuple, st.SearchStrategy] = {
    ("common", "affinity"): AFFINITY,
    ("common", "tolerations"): TOLERATIONS,
    ("common", "podSecurityContext"): POD_SC,
    ("common", "containerSecurityContext"): CONTAINER_SC,
    ("training", "multiWorkerSecurityContext"): CONTAINER_SC,
    ("common", "extraVolumes", "*", "source"): VOLUME_SOURCE,
    ("common", "extraEnv", "*", "valueFrom"): VALUE_FROM,
}
# The same pass-through nodes in each stage's `scheduling`, and GPU tolerations.
STAGE_BLOCKS = ("notebook", "download", "sft", "dpo", "merge", "eval", "serving")
for _b in STAGE_BLOCKS:
    KNOWN_KEYS[(_b, "scheduling", "affinity")] = KNOWN_KEYS[("common", "affinity")]
    KNOWN_KEYS[(_b, "scheduling", "tolerations", "*")] = KNOWN_KEYS[("common", "tolerations", "*")]
    PASSTHROUGH[(_b, "scheduling", "affinity")] = AFFINITY
    PASSTHROUGH[(_b, "scheduling", "tolerations")] = TOLERATIONS
KNOWN_KEYS[("common", "gpu", "tolerations", "*")] = KNOWN_KEYS[("common", "tolerations", "*")]
PASSTHROUGH[("common", "gpu", "tolerations")] = TOLERATIONS
PASSTHROUGH_MODE = "mixed"  # set by the test module from FUZZ_PASSTHROUGH
# Values mixed into what the schema derives, for collisions with the chart's own.
EXTRA = {("common", "extraVolumes", "*", "mountPath"): MOUNT_PATH}
# Wrong shapes of what the templates themselves read inside a pass-through node
# (the RDMA branch appends IPC_LOCK to <securityContext>.capabilities.add).
_NOT_A_MAP = st.one_of(json_scalars(null=False), st.lists(json_scalars(), max_size=2))
_CAPS_SHAPES = st.one_of(
    st.fixed_dictionaries({"capabilities": _NOT_A_MAP}),
    st.fixed_dictionaries({"capabilities": st.fixed_dictionaries({"add": st.one_of(json_scalars(null=False), free_json())})}),
)
WRONG_SHAPES = {("common", "containerSecurityContext"): _CAPS_SHAPES, ("training", "multiWorkerSecurityContext"): _CAPS_SHAPES}
