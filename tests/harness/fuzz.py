"""Property-based fuzzing of the values surface (tests/test_fuzz_values.py).

What lives here:
  * Hypothesis strategies derived from values.schema.json node by node (type,
    enum, bounds, pattern via from_regex(fullmatch=True), lengths, arrays,
    objects, propertyNames, oneOf), salted with strings YAML reads as other
    types and with names the chart itself uses: `example()` draws a preset
    plus overrides of 1-6 leaves (and usually `stages`), `invalid_example()`
    adds one deliberate violation (wrong type, broken constraint, unknown key).
    hypothesis-jsonschema is not used: 0.23.1 fails on this schema's object
    nodes with the current Hypothesis ('many' object has no attribute 'more').
  * The oracle: Helm's merge of chart defaults, preset and --set-json
    (`merged_values`: maps merge, --set-json replaces its leaf, null deletes a
    key the chart defaults hold) validated with jsonschema, `$` read as Go's
    end of text (`schema_errors`).
  * The verdict of one example rendered with Helm 3 and 4 (`check`): a list of
    Problems, each with a signature stable under shrinking, so that Hypothesis
    keeps distinct bugs apart and shrinks each. Beyond the Kubernetes schema
    tier it flags duplicate YAML keys, plain scalars PyYAML and go-yaml read
    as different types, and what the API server refuses on sight.
  * `minimize`: a greedy shrinker of failures logged by a survey
    (FUZZ_COLLECT, see the test module):
        PYTHONPATH=scripts:tests .venv/bin/python -m harness.fuzz minimize out/fuzz/failures.jsonl
"""
from __future__ import annotations

import copy
import json
import math
import re
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import jsonschema
import yaml
from hypothesis import strategies as st

from chartkit import helm, k8s
from chartkit.chart import ROOT, STAGES

SCHEMA = json.loads((ROOT / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((ROOT / "values.yaml").read_text())
PRESETS = ("8b.yaml", "8b-2xdp.yaml", "70b-4xdp.yaml", "70b-4xdp-qlora.yaml")
PRESET_VALUES = {p: yaml.safe_load((ROOT / "values" / p).read_text()) for p in PRESETS}
RELEASE = "llama31"

SCHEMA_MSG = "values don't meet the specifications of the schema"
RULE_MSG = "llama-factory: invalid values"
YAML_MARKERS = ("YAML parse error", "error converting YAML to JSON")
# Texts of Go template failures (for the report; anything that is neither a
# schema, a rule nor a YAML error counts as a crash).
# The most specific first: a signature names the first one the text holds.
CRASH_MARKERS = ("nil pointer", "wrong type for value", "can't evaluate field", "invalid value; expected",
                 "cannot index", "unable to parse", "Cannot push on type", "panic", "error calling", 'executing "',
                 "<.Values")

# ---------------------------------------------------------------------------
# The oracle: Helm's merge of values and the schema read with Go's regexp.


def go_pattern(pattern: str) -> str:
    """A JSON-schema pattern for Python's re with Go RE2's meaning of `$`
    (end of text; Python's `$` also matches before a final newline)."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":  # a literal ] first in a class
                out.append("[]")
                i += 2
                continue
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


@cache
def _go_re(pattern: str) -> re.Pattern:
    return re.compile(go_pattern(pattern))


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string") and not _go_re(patrn).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


GoValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})
VALIDATOR = GoValidator(SCHEMA)


def node_validator(node: dict):
    return GoValidator(node)


def schema_errors(values: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in VALIDATOR.iter_errors(values)]


def merge_maps(a: dict, b: dict) -> dict:
    """Helm's mergeMaps of values files (later wins, maps merge)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_maps(out[k], v)
        else:
            out[k] = v
    return out


def _coalesce(user: dict, chart: dict) -> dict:
    """Helm's coalesceValues/coalesceTables: user values win, maps merge, and a
    user null deletes a key the chart defaults hold."""
    for key, val in chart.items():
        if key in user:
            uv = user[key]
            if uv is None:
                del user[key]
            elif isinstance(uv, dict) and isinstance(val, dict):
                _coalesce(uv, val)
        else:
            user[key] = copy.deepcopy(val)
    return user


def merged_values(ex: Example) -> dict:
    """The values Helm validates and renders for an example."""
    base = copy.deepcopy(PRESET_VALUES[ex.preset])
    for path, text in ex.overrides:
        d = base
        keys = path.split(".")
        for k in keys[:-1]:
            if not isinstance(d.get(k), dict):
                d[k] = {}
            d = d[k]
        d[keys[-1]] = json.loads(text)  # strvals.ParseJSON sets (replaces) the leaf
    return _coalesce(base, copy.deepcopy(DEFAULTS))


# ---------------------------------------------------------------------------
# Schema navigation.


def node_at(path: tuple[str, ...]) -> dict:
    n = SCHEMA
    for k in path:
        n = n["properties"][k]
    return n


def _walk(node: dict, path: tuple[str, ...]):
    if node.get("type") == "object" and "properties" in node:
        if path:
            yield "object", path
        for k, sub in node["properties"].items():
            yield from _walk(sub, path + (k,))
    else:
        yield "leaf", path


LEAVES = tuple(p for kind, p in _walk(SCHEMA, ()) if kind == "leaf")
# Interior objects that refuse unknown keys (root included).
CLOSED_OBJECTS = ((),) + tuple(p for kind, p in _walk(SCHEMA, ()) if kind == "object"
                              and node_at(p).get("additionalProperties") is False)
assert SCHEMA.get("additionalProperties") is False

# ---------------------------------------------------------------------------
# Strategies of valid values.

# Strings YAML (1.1, PyYAML or go-yaml) reads as something else when unquoted, and
# characters that break YAML or Go templates when pasted raw.
TRICKY = ("true", "false", "null", "yes", "no", "on", "off", "y", "n", "Y", "N", "~", "0", "1", "007", "08", "1e3",
          "1e+06", "0x1F", "0o17", "1_000", ".inf", ".nan", "12:30", "2001-01-01", "-", "*a", "&a", "!a", "#a",
          "a #b", "'a", '"a', "a: b", "a:", "- a", "{a}", "[a]", "|", ">", "%a", "@a", "`a", " a", "a ", "a b",
          "a\nb", "a\tb", "\\", "{{ x }}", "é", "中文", "a,b=c", "")
_SPECIAL = list(" :#{}[],&*!|>'\"%@`-?\n\t\\=/.")
CHARS = st.one_of(st.sampled_from(_SPECIAL), st.characters(codec="utf-8", exclude_categories=("Cs", "Cn", "Co")),
                  st.sampled_from("abcxyz019"))
DNS_LABEL = st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
NAMES = st.one_of(st.sampled_from(("team", "hf-token", "cache", "y", "true", "null", "1")), DNS_LABEL)

# Keys of free maps: names the chart itself uses (collisions), YAML-tricky ones, then anything
# the key's pattern allows.
KNOWN_KEYS = {
    ("training", "extraArgs"): ("model_name_or_path", "stage", "do_train", "finetuning_type", "deepspeed",
                                "dataset", "template", "cutoff_len", "output_dir", "lora_rank", "lora_alpha",
                                "lora_target", "quantization_bit", "learning_rate", "num_train_epochs", "max_steps",
                                "val_size", "eval_steps", "max_samples", "trust_remote_code", "neat_packing",
                                "packing", "y", "null", "true"),
    ("common", "extraEnv"): ("HF_HOME", "HF_TOKEN", "HF_ENDPOINT", "HOME", "VLLM_API_KEY", "USE_MODELSCOPE_HUB",
                             "HF_HUB_OFFLINE", "MY_TOKEN", "DB_PASSWORD", "API_KEY", "PATH", "y", "Y", "n", "true",
                             "null", "NULL", "on", "off", "yes", "No", "_"),
    ("common", "extraVolumes"): ("workspace", "tmp", "dshm", "config", "cache", "y", "n", "true", "null", "on", "1",
                                 "123", "1e3", "08", "0x1f"),
    ("datasets",): ("identity", "alpaca_gpt4_en", "dpo_mix_en", "team", "y", "true", "null", "1", "1e3", "a.b"),
    ("serving", "extraArgs"): ("max-lora-rank", "max-model-len", "tensor-parallel-size", "port", "served-model-name",
                               "enable-lora", "enforce-eager", "dtype", "lora-modules", "max-loras",
                               "gpu-memory-utilization", "no-enable-prefix-caching", "y", "true"),
    ("eval", "extraArgs"): ("limit", "tasks", "model", "model_args", "batch_size", "output_path", "log_samples",
                            "num_fewshot", "device", "y"),
    ("training", "deepspeed", "extraConfig"): ("zero_optimization", "bf16", "fp16", "train_batch_size",
                                               "gradient_clipping", "train_micro_batch_size_per_gpu",
                                               "steps_per_print", "stage", "wall_clock_breakdown"),
}
for _stage in ("sft", "dpo", "merge"):
    KNOWN_KEYS[(_stage, "extraArgs")] = KNOWN_KEYS[("training", "extraArgs")] + (
        "export_dir", "export_size", "export_device", "adapter_name_or_path")
KNOWN_KEYS[("common", "podLabels")] = ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                                       "app.kubernetes.io/component", "helm.sh/chart", "team", "y", "true")
KNOWN_KEYS[("common", "podAnnotations")] = ("helm.sh/hook", "team", "y")
KNOWN_KEYS[("storage", "annotations")] = ("helm.sh/resource-policy", "team", "y")
KNOWN_KEYS[("common", "nodeSelector")] = ("kubernetes.io/arch", "nvidia.com/gpu.product", "y", "true")


def text(min_size: int = 0, max_size: int | None = 16) -> st.SearchStrategy[str]:
    hi = 16 if max_size is None else min(max_size, 16)
    ok = lambda s: min_size <= len(s) <= (max_size if max_size is not None else 10**9)  # noqa: E731
    return st.one_of(st.sampled_from(TRICKY).filter(ok),
                     st.text(CHARS, min_size=min_size, max_size=max(hi, min_size)).filter(ok))


def json_scalars(null: bool = True) -> st.SearchStrategy:
    return st.one_of(*([st.none()] if null else []), st.booleans(), st.integers(-10**7, 10**7),
                     st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False), text(max_size=12))


def free_json(keys: st.SearchStrategy | None = None, min_size: int = 0, max_size: int = 3) -> st.SearchStrategy[dict]:
    """A small free-form object; `keys` name its keys at every depth."""
    keys = keys if keys is not None else text(min_size=1, max_size=10)

    def extend(inner):
        return st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3))

    values = st.recursive(json_scalars(), extend, max_leaves=4)
    return st.dictionaries(keys, values, min_size=min_size, max_size=max(min_size, min(max_size, 3)))


def _string(node: dict, key_of: tuple | None = None) -> st.SearchStrategy[str]:
    lo, hi = node.get("minLength", 0), node.get("maxLength")
    ok = lambda s: lo <= len(s) and (hi is None or len(s) <= hi)  # noqa: E731
    known = KNOWN_KEYS.get(key_of, ()) if key_of else ()
    if "pattern" in node:
        rx = _go_re(node["pattern"])
        match = lambda s: ok(s) and rx.search(s) is not None  # noqa: E731
        tricky = [s for s in TRICKY + known if match(s)]
        gen = st.from_regex(node["pattern"], fullmatch=True).filter(match)
        return st.one_of(st.sampled_from(tricky), gen) if tricky else gen
    if known:
        return st.one_of(st.sampled_from([k for k in known if ok(k)]), text(lo, hi))
    return text(lo, hi)


def _int_bounds(node: dict) -> tuple[int, int]:
    lo, hi = node.get("minimum"), node.get("maximum")
    if "exclusiveMinimum" in node:
        lo = math.floor(node["exclusiveMinimum"]) + 1
    if "exclusiveMaximum" in node:
        hi = math.ceil(node["exclusiveMaximum"]) - 1
    return (-(2**31) if lo is None else math.ceil(lo)), (2**31 - 1 if hi is None else math.floor(hi))


def _number(node: dict) -> st.SearchStrategy:
    lo, hi = node.get("minimum"), node.get("maximum")
    xlo, xhi = "exclusiveMinimum" in node, "exclusiveMaximum" in node
    lo = node.get("exclusiveMinimum", lo)
    hi = node.get("exclusiveMaximum", hi)
    floats = st.floats(-1e9 if lo is None else lo, 1e9 if hi is None else hi, exclude_min=xlo, exclude_max=xhi,
                       allow_nan=False, allow_infinity=False)
    ilo, ihi = _int_bounds(node)
    ints = st.integers(max(ilo, -10**9), min(ihi, 10**9))
    return st.one_of(ints, floats) if max(ilo, -10**9) <= min(ihi, 10**9) else floats


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
POD_SC = st.fixed_dictionaries({}, optional={
    "runAsUser": _maybe_null(st.integers(0, 65535)), "runAsGroup": _maybe_null(st.integers(0, 65535)),
    "runAsNonRoot": _maybe_null(st.booleans()), "fsGroup": _maybe_null(st.integers(0, 65535)),
    "fsGroupChangePolicy": _maybe_null(st.sampled_from(("OnRootMismatch", "Always"))),
    "seccompProfile": _maybe_null(SECCOMP), "supplementalGroups": st.lists(st.integers(0, 65535), max_size=2)})
CONTAINER_SC = st.fixed_dictionaries({}, optional={
    "runAsUser": _maybe_null(st.integers(0, 65535)), "runAsGroup": st.integers(0, 65535),
    "runAsNonRoot": _maybe_null(st.booleans()), "allowPrivilegeEscalation": _maybe_null(st.booleans()),
    "readOnlyRootFilesystem": st.booleans(), "privileged": st.booleans(),
    "capabilities": _maybe_null(st.fixed_dictionaries({}, optional={
        "add": _maybe_null(st.lists(st.sampled_from(CAPS), max_size=2, unique=True)),
        "drop": _maybe_null(st.lists(st.sampled_from(CAPS), max_size=2, unique=True))})),
    "seccompProfile": _maybe_null(SECCOMP)})
LABEL_KEY = st.one_of(st.sampled_from(("kubernetes.io/hostname", "nvidia.com/gpu.product", "team")), DNS_LABEL)
TOLERATIONS = st.lists(st.one_of(
    st.fixed_dictionaries({"key": LABEL_KEY, "operator": st.just("Equal"), "value": DNS_LABEL},
                          optional={"effect": st.sampled_from(("NoSchedule", "NoExecute", "PreferNoSchedule")),
                                    "tolerationSeconds": st.integers(0, 604800)}),
    st.fixed_dictionaries({"operator": st.just("Exists")}, optional={"key": LABEL_KEY})), max_size=2)
_MATCH = st.fixed_dictionaries({"key": LABEL_KEY, "operator": st.sampled_from(("In", "NotIn")),
                                "values": st.lists(DNS_LABEL, min_size=1, max_size=2)})
AFFINITY = st.one_of(
    st.just({}),
    st.builds(lambda m: {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [m]}]}}}, _MATCH),
    st.builds(lambda w, m: {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": w, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                          "labelSelector": {"matchExpressions": [m]}}}]}},
              st.integers(1, 100), _MATCH))
VOLUME_SOURCE = st.one_of(
    st.sampled_from(({"emptyDir": {}}, {"emptyDir": {"medium": "Memory"}})),
    st.builds(lambda n: {"configMap": {"name": n}}, NAMES),
    st.builds(lambda n: {"secret": {"secretName": n}}, NAMES),
    st.builds(lambda n: {"persistentVolumeClaim": {"claimName": n, "readOnly": True}}, NAMES),
    st.builds(lambda p: {"hostPath": {"path": "/" + p}}, DNS_LABEL))
VALUE_FROM = st.one_of(
    st.builds(lambda n, k: {"secretKeyRef": {"name": n, "key": k}}, NAMES, DNS_LABEL),
    st.builds(lambda n, k: {"configMapKeyRef": {"name": n, "key": k, "optional": True}}, NAMES, DNS_LABEL),
    st.builds(lambda p: {"fieldRef": {"fieldPath": p}},
              st.sampled_from(("metadata.name", "metadata.namespace", "status.podIP", "spec.nodeName"))),
    st.just({"resourceFieldRef": {"resource": "limits.cpu"}}))
MOUNT_PATH = st.one_of(st.sampled_from(("/t9k/mnt", "/dev/shm", "/etc/llama-factory", "/tmp", "/data", "/data/")),
                       st.from_regex(r"/[a-z0-9._-]{1,10}(/[a-z0-9._-]{1,10})?", fullmatch=True))

_SC_KEYS = ("runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "capabilities", "add", "drop", "seccompProfile",
            "type", "privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem")
KNOWN_KEYS.update({
    ("common", "podSecurityContext"): _SC_KEYS,
    ("common", "containerSecurityContext"): _SC_KEYS,
    ("training", "multiWorkerSecurityContext"): _SC_KEYS,
    ("common", "affinity"): ("nodeAffinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                             "nodeSelectorTerms", "matchExpressions", "key", "operator", "values"),
    ("common", "tolerations", "*"): ("key", "operator", "value", "effect", "tolerationSeconds"),
    ("common", "extraVolumes", "*", "source"): ("emptyDir", "configMap", "secret", "hostPath", "name", "path",
                                                "secretName", "medium"),
    ("common", "extraEnv", "*", "valueFrom"): ("secretKeyRef", "configMapKeyRef", "fieldRef", "name", "key",
                                               "fieldPath"),
})

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
    st.fixed_dictionaries({"capabilities": st.fixed_dictionaries({"add": st.one_of(
        json_scalars(null=False), free_json())})}))
WRONG_SHAPES = {("common", "containerSecurityContext"): _CAPS_SHAPES,
                ("training", "multiWorkerSecurityContext"): _CAPS_SHAPES}


def valid(node: dict, path: tuple = ()) -> st.SearchStrategy:
    """Values the schema node accepts (the oracle has the last word)."""
    if path in PASSTHROUGH and PASSTHROUGH_MODE != "raw":
        if PASSTHROUGH_MODE == "k8s":
            return PASSTHROUGH[path]
        return st.one_of(PASSTHROUGH[path], _derived(node, path), *(
            [WRONG_SHAPES[path]] if path in WRONG_SHAPES else []))
    if path in WRONG_SHAPES:
        return st.one_of(WRONG_SHAPES[path], _derived(node, path))
    if path in EXTRA:
        return st.one_of(EXTRA[path], _derived(node, path))
    return _derived(node, path)


def _derived(node: dict, path: tuple) -> st.SearchStrategy:
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    if "oneOf" in node or ("anyOf" in node and "type" not in node):
        return st.one_of([valid(b, path) for b in node.get("oneOf", node.get("anyOf"))])
    types = node.get("type")
    types = [types] if isinstance(types, str) else (types or ["object"])
    return st.one_of([_typed(t, node, path) for t in types])


def _typed(t: str, node: dict, path: tuple) -> st.SearchStrategy:
    if t == "null":
        return st.none()
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        lo, hi = _int_bounds(node)
        ints = st.integers(lo, hi)
        # Helm reads every number as float64 and `{{ . }}` prints one of 1e6 or more as
        # 1e+06: draw such values often, not just when integers() happens to.
        edges = [v for v in (10**6, 1234567, 2**31 - 1) if lo <= v <= hi]
        return st.one_of(ints, ints, st.sampled_from(edges)) if edges else ints
    if t == "number":
        return _number(node)
    if t == "string":
        return _string(node)
    if t == "array":
        items = node.get("items", {})
        hi = min(node.get("maxItems", 4), 4)
        inner = valid(items, path + ("*",)) if items else json_scalars()
        return st.lists(inner, min_size=node.get("minItems", 0), max_size=max(hi, node.get("minItems", 0)),
                        unique_by=(lambda v: json.dumps(v, sort_keys=True)) if node.get("uniqueItems") else None)
    if t == "object":
        return _object(node, path)
    raise ValueError(f"no strategy for type {t!r} at {path}")


def _object(node: dict, path: tuple) -> st.SearchStrategy[dict]:
    props = node.get("properties", {})
    addl = node.get("additionalProperties", True)
    if props:
        required = set(node.get("required", ()))
        branches = [set(b.get("required", ())) for b in node.get("anyOf", ())] or [set()]

        def build(req):
            req = required | req
            return st.fixed_dictionaries(
                {k: valid(props[k], path + (k,)) for k in sorted(req)},
                optional={k: valid(v, path + (k,)) for k, v in props.items() if k not in req})
        return st.one_of([build(b) for b in branches])
    if isinstance(addl, dict):
        names = node.get("propertyNames", {})
        keys = _string({"type": "string", **names}, key_of=path) if names else (
            st.one_of(st.sampled_from(KNOWN_KEYS[path]), text(1, 12)) if path in KNOWN_KEYS else text(1, 12))
        lo = node.get("minProperties", 0)
        return st.dictionaries(keys, valid(addl, path + ("*",)), min_size=lo, max_size=max(lo, 3))
    lo, hi = node.get("minProperties", 0), node.get("maxProperties", 3)
    if path in KNOWN_KEYS:
        return free_json(st.one_of(st.sampled_from(KNOWN_KEYS[path]), text(1, 10)), lo, hi)
    return free_json(None, lo, hi)


@cache
def leaf_strategy(path: tuple) -> st.SearchStrategy:
    return valid(node_at(path), path)


# ---------------------------------------------------------------------------
# Strategies of invalid values.

_WRONG_TYPES = ("fuzz", 7, 2.5, True, [1], {"k": 1})


def _violations(node: dict) -> list:
    """Values that break one constraint of a node (not the type)."""
    out = []
    for k in ("minimum", "exclusiveMinimum"):
        if k in node:
            out += [node[k] - 1, node[k] - 0.5] if k == "minimum" else [node[k], node[k] - 1]
    for k in ("maximum", "exclusiveMaximum"):
        if k in node:
            out += [node[k] + 1, node[k] + 0.5] if k == "maximum" else [node[k], node[k] + 1]
    if "minLength" in node and node["minLength"] > 0:
        out.append("")
    if "maxLength" in node:
        out.append("a" * (node["maxLength"] + 1))
    if "pattern" in node:
        out += ["Bad Value!", "a b", "x\n", "\n", "UPPER", "-a-", "é"]
    if "enum" in node:
        out += ["fuzz-not-in-enum", 3 if all(isinstance(e, str) for e in node["enum"]) else "3"]
    if node.get("minItems"):
        out.append([])
    if node.get("uniqueItems") and "items" in node:
        enum = node["items"].get("enum")
        out.append([enum[0], enum[0]] if enum else ["a", "a"])
    if "items" in node:
        out.append(["Bad Value!", 3])
    if "propertyNames" in node:
        out.append({"Bad Key!": {}})
    if "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        out += [{"k": "v"}, {"k": 3}, {"k": None}, {"k": {"x": 1}}]
    for b in node.get("oneOf", ()):
        out += _violations(b)
    return out


@st.composite
def invalid_override(draw) -> tuple[str, str]:
    """One override the schema must reject: a wrong type, a broken constraint
    or an unknown key."""
    kind = draw(st.sampled_from(("type", "constraint", "unknown")))
    if kind == "unknown":
        parent = draw(st.sampled_from(CLOSED_OBJECTS))
        known = set(node_at(parent)["properties"])
        key = draw(st.from_regex(r"[a-z][a-zA-Z0-9]{0,10}", fullmatch=True).filter(lambda k: k not in known))
        value = draw(json_scalars(null=False))
        return ".".join(parent + (key,)), json_arg(value)
    if kind == "type":
        path = draw(st.sampled_from(LEAVES + CLOSED_OBJECTS[1:]))
        v = node_validator(node_at(path))
        value = draw(st.sampled_from([w for w in _WRONG_TYPES if not v.is_valid(w)]))
        return ".".join(path), json_arg(value)
    candidates = [p for p in LEAVES if _violations(node_at(p))]
    path = draw(st.sampled_from(candidates))
    v = node_validator(node_at(path))
    bad = [w for w in _violations(node_at(path)) if not v.is_valid(w)]
    if not bad:  # e.g. a violation of one oneOf branch that another accepts
        bad = [w for w in _WRONG_TYPES if not v.is_valid(w)]
    return ".".join(path), json_arg(draw(st.sampled_from(bad)))


# ---------------------------------------------------------------------------
# Examples.


def _escape(ch: str) -> str:
    c = ord(ch)
    if c > 0xFFFF:
        c -= 0x10000
        return f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04x}"
    return f"\\u{c:04x}"


def json_arg(value) -> str:
    """JSON for --set-json: readable non-ASCII, every invisible character escaped."""
    return "".join(c if c.isprintable() else _escape(c) for c in json.dumps(value, ensure_ascii=False))


@dataclass(frozen=True)
class Example:
    preset: str
    overrides: tuple[tuple[str, str], ...]  # (dotted path, JSON text)

    def set_json(self) -> tuple[str, ...]:
        return tuple(f"{p}={t}" for p, t in self.overrides)

    def release(self, major: str) -> helm.Release:
        return helm.Release(values=(f"values/{self.preset}",), set_json=self.set_json(), major=major, name=RELEASE)

    def command(self, major: str = "3") -> str:
        args = [f".tools/bin/helm{major}", "template", RELEASE, ".", "-f", f"values/{self.preset}"]
        for s in self.set_json():
            args += ["--set-json", s]
        return " ".join(shlex.quote(a) for a in args)

    def to_json(self) -> dict:
        return {"preset": self.preset, "overrides": [[p, json.loads(t)] for p, t in self.overrides]}

    @staticmethod
    def from_json(d: dict) -> Example:
        return Example(d["preset"], tuple((p, json_arg(v)) for p, v in d["overrides"]))


# Leaves that show only under another setting (as in tests/test_values_surface.py).
COMPANIONS = {
    ("training", "multiWorkerSecurityContext"): {"training.workers": 2},
    ("common", "containerSecurityContext"): {"training.rdma.enabled": True},
    ("training", "rdma", "resourceName"): {"training.rdma.enabled": True},
    ("serving", "maxLoras"): {"serving.lora": True, "serving.model": "sft"},
    ("model", "modelscopeRepo"): {"model.source": "modelscope"},
    ("merge", "gpus"): {"merge.exportDevice": "auto"},
    ("notebook", "ssh", "authorizedKeys"): {"notebook.ssh.enabled": True},
    ("notebook", "ssh", "serviceType"): {"notebook.ssh.enabled": True},
    ("serving", "apiKey", "key"): {"serving.apiKey.existingSecret": "api-key"},
    ("common", "huggingface", "tokenKey"): {"common.huggingface.existingSecret": "hf-token"},
    ("common", "scheduler", "priority"): {"common.scheduler.queue": "team"},
    ("sft", "scheduling", "priority"): {"sft.scheduling.queue": "team"},
    ("dpo", "scheduling", "priority"): {"dpo.scheduling.queue": "team"},
}
STAGE_LISTS = st.lists(st.sampled_from(STAGES), min_size=1, max_size=len(STAGES), unique=True)
NON_STAGE_LEAVES = tuple(p for p in LEAVES if p != ("stages",))


@st.composite
def overrides(draw, min_size: int = 1, max_size: int = 6) -> list[tuple[str, str]]:
    # Indices, not lists(sampled_from(...), unique=True): that draws the first few leaves in
    # a fifth of all examples. Each index shrinks on its own (towards `global`, a no-op).
    idx = draw(st.lists(st.integers(0, len(NON_STAGE_LEAVES) - 1), min_size=min_size, max_size=max_size,
                        unique=True))
    paths = [NON_STAGE_LEAVES[i] for i in idx]
    out = []
    for p in paths:
        out.append((".".join(p), json_arg(draw(leaf_strategy(p)))))
    for p in paths:  # settings that make a drawn leaf matter, half of the time
        for path, value in COMPANIONS.get(p, {}).items():
            if path not in {o[0] for o in out} and draw(st.booleans()):
                out.append((path, json_arg(value)))
    return out


@st.composite
def example(draw) -> Example:
    """A preset, usually a random set of stages, and 1-6 overridden leaves."""
    preset = draw(st.sampled_from(PRESETS))
    ovs = []
    if draw(st.integers(0, 9)) < 9:
        ovs.append(("stages", json_arg(draw(STAGE_LISTS))))
    ovs += draw(overrides())
    return Example(preset, tuple(ovs))


@st.composite
def invalid_example(draw) -> Example:
    """An example with one override the schema rejects among 0-3 valid ones."""
    preset = draw(st.sampled_from(PRESETS))
    ovs = [("stages", json_arg(draw(STAGE_LISTS)))] + draw(overrides(min_size=0, max_size=3))
    bad = draw(invalid_override())
    ovs = [o for o in ovs if not (o[0] == bad[0] or o[0].startswith(bad[0] + ".") or bad[0].startswith(o[0] + "."))]
    ovs.insert(draw(st.integers(0, len(ovs))), bad)
    return Example(preset, tuple(ovs))


# ---------------------------------------------------------------------------
# YAML as go-yaml v2 (sigs.k8s.io/yaml, what Helm and kubectl read) resolves plain scalars.

_GO_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_GO_MAP = {**{s: "bool" for s in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N",
                                   "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")},
           **{s: "null" for s in ("", "~", "null", "Null", "NULL")},
           **{s: "float" for s in (".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
                                   "-.inf", "-.Inf", "-.INF")}}
_GO_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?$")


def _go_int(s: str) -> bool:
    s = s.replace("_", "")
    m = re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]*|0[bB][01]+|[1-9][0-9]*)", s)
    return m is not None


def go_kind(s: str) -> str:
    if s in _GO_MAP:
        return _GO_MAP[s]
    c = s[:1]
    if c == ".":
        try:
            float(s)
            return "float" if _GO_FLOAT.match(s) else "str"
        except ValueError:
            return "str"
    if c.isdigit() or c in "+-":
        if _GO_TIMESTAMP.match(s):
            return "timestamp"
        if _go_int(s):
            return "int"
        if _GO_FLOAT.match(s.replace("_", "")):
            return "float"
    return "str"


_PY_KIND = {"null": "null", "bool": "bool", "int": "int", "float": "float", "str": "str", "timestamp": "timestamp"}


def _node_problems(node, path: list, out: list) -> None:
    """Duplicate mapping keys, and plain scalars that PyYAML (the harness's
    reader) and go-yaml (Helm's and kubectl's) read as different types."""
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else repr(k)
            if key in seen:
                out.append(("duplicate key", path + [key], f"duplicate key {key!r}"))
            seen.add(key)
            _node_problems(k, path + [f"<key {key}>"], out)
            _node_problems(v, path + [str(key)], out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _node_problems(v, path + [str(i)], out)
    elif isinstance(node, yaml.ScalarNode) and node.style is None:
        py = _PY_KIND.get(node.tag.rsplit(":", 1)[-1], "str")
        go = go_kind(node.value)
        if {py, go} != {"int", "float"} and py != go:
            out.append(("ambiguous scalar", path,
                        f"plain scalar {node.value!r} reads as {py} in PyYAML, {go} in go-yaml (Helm, kubectl)"))


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> tuple[tuple, list]:
    """The documents of a render (as yaml.safe_load_all reads them; libyaml when
    present, for speed) and the YAML-level problems of each."""
    loader = _Loader(text)
    docs, issues = [], []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            found = []
            _node_problems(node, [], found)
            doc = loader.construct_document(node)
            if doc:
                docs.append(doc)
                what = f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}" \
                    if isinstance(doc, dict) else "?"
                issues += [(kind, path, f"{what}: {'/'.join(path)}: {msg}") for kind, path, msg in found]
    finally:
        loader.dispose()
    return tuple(docs), issues


@cache
def _registry(version: str):
    """chartkit.k8s's registry with retrieval cached (15x faster validation)."""
    from referencing import Registry
    return Registry(retrieve=cache(k8s._registry(version)._retrieve))


@cache
def _validator(api_version: str, kind: str, version: str):
    base = k8s.validator(api_version, kind, version)  # raises MissingSchema
    try:
        return type(base)(base.schema, registry=_registry(version))
    except AttributeError:  # chartkit.k8s changed shape: use its validator as is
        return base


def _tail(path) -> str:
    """The last two names of a path, indices dropped: what a signature keeps."""
    names = [str(p) for p in path if not isinstance(p, int) and not str(p).isdigit()]
    return "/".join(names[-2:]) or "<root>"


# ---------------------------------------------------------------------------
# The verdict of one example.


@dataclass
class Problem:
    signature: str  # stable under shrinking: what Hypothesis keeps distinct bugs apart by
    message: str


@dataclass
class Result:
    example: Example
    valid: bool
    schema_errors: list[str]
    outcome: dict = field(default_factory=dict)  # major -> "rendered" | "schema" | "rule" | "yaml" | "crash"
    stderr: dict = field(default_factory=dict)
    objects: tuple = ()
    problems: list[Problem] = field(default_factory=list)


def classify(rc: int, stderr: str) -> str:
    if rc == 0:
        return "rendered"
    if SCHEMA_MSG in stderr:
        return "schema"
    if RULE_MSG in stderr:
        return "rule"
    if any(m in stderr for m in YAML_MARKERS):
        return "yaml"
    return "crash"


_WHERE = re.compile(r"(templates/[\w./-]+\.(?:yaml|tpl|txt)):(\d+):(\d+)")


def crash_signature(stderr: str) -> str:
    """Where the template failed (its innermost frame: Helm 3 and 4 print the
    frames differently) and how."""
    frames = _WHERE.findall(stderr)
    where = ":".join(frames[-1]) if frames else "?"
    kind = next((k for k in CRASH_MARKERS if k in stderr and k not in ('executing "', "<.Values")), "error")
    return f"crash {where} {kind}"


def yaml_signature(stderr: str) -> str:
    m = re.search(r"YAML parse error on (?:[\w.-]+/)?(templates/\S+?):", stderr)
    return f"yaml-parse {m.group(1) if m else '?'}"


_RULE_LINE = re.compile(r"^  - ([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9_-]+|\[\d+\]|\[\"(?:[^\"\\]|\\.)*\"\])*): (.*)$")


def rule_bullets(stderr: str) -> list[str]:
    return [ln for ln in stderr[stderr.index(RULE_MSG):].splitlines() if ln.startswith("  - ")]


def _rule_problems(stderr: str) -> list[Problem]:
    out = []
    bullets = rule_bullets(stderr)
    if not bullets:
        out.append(Problem("rule without bullets", stderr))
    for b in bullets:
        m = _RULE_LINE.match(b)
        if not m or m.group(1).split(".")[0].split("[")[0] not in SCHEMA["properties"]:
            out.append(Problem("rule names no field", b))
        elif "Fix:" not in b:
            out.append(Problem(f"rule without fix {m.group(1)}", b))
        if "%!" in b:
            out.append(Problem(f"rule message garbled {m.group(1) if m else '?'}", b))
    return out


def manifest_problems(objects) -> list[Problem]:
    """Every object against the Kubernetes (and T9k) schemas of the checked
    versions, as chartkit.k8s.errors reports them."""
    out = []
    for o in objects:
        if not isinstance(o, dict) or not isinstance(o.get("apiVersion"), str) or not isinstance(o.get("kind"), str):
            out.append(Problem("not a Kubernetes object", repr(o)[:2000]))
            continue
        kind, name = o["kind"], (o.get("metadata") or {}).get("name", "?")
        for version in k8s.K8S_VERSIONS:
            try:
                v = _validator(o["apiVersion"], kind, version)
            except k8s.MissingSchema as e:
                out.append(Problem(f"missing schema {kind}", str(e)))
                continue
            for e in v.iter_errors(o):
                where = "/".join(map(str, e.absolute_path)) or "<root>"
                out.append(Problem(f"k8s {_tail(e.absolute_path)}: {e.validator}",
                                   f"Kubernetes {version}: {kind}/{name}: {where}: {e.message}"))
    return out


def apiserver_problems(objects) -> list[Problem]:
    """What the API server refuses that no JSON schema says: duplicate volume
    names, duplicate or dangling volume mounts, a Deployment whose selector does
    not select its own pods, and the rules of harness.invariants.apiserver_rules
    (name formats, label and annotation syntax, Service -> selector -> port, ...)."""
    from chartkit.pipeline import pod_templates

    from .invariants import apiserver_rules
    out = [Problem(f"apiserver {_rule_kind(m)}", m) for m in apiserver_rules(objects)]
    for o, spec, _meta in pod_templates(objects):
        what = f"{o['kind']}/{o['metadata']['name']}"
        vols = [v.get("name") for v in spec.get("volumes") or []]
        for n in {v for v in vols if vols.count(v) > 1}:
            out.append(Problem(f"apiserver duplicate volume {o['kind']}", f"{what}: volume {n!r} twice"))
        for c in spec.get("containers") or []:
            mounts = c.get("volumeMounts") or []
            paths = [m.get("mountPath") for m in mounts]
            for p in {p for p in paths if paths.count(p) > 1}:
                out.append(Problem(f"apiserver duplicate mountPath {o['kind']}",
                                   f"{what} container {c.get('name')}: mountPath {p!r} twice"))
            for m in mounts:
                if m.get("name") not in vols:
                    out.append(Problem(f"apiserver mount without volume {o['kind']}",
                                       f"{what}: mount {m.get('name')!r} names no volume"))
    for o in objects:
        if o.get("kind") == "Deployment":
            sel = o["spec"]["selector"].get("matchLabels") or {}
            labels = o["spec"]["template"]["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in sel.items()):
                out.append(Problem("apiserver selector does not match template",
                                   f"Deployment/{o['metadata']['name']}: selector {sel} vs labels {labels}"))
    return out


def _rule_kind(message: str) -> str:
    """A signature for an API-server rule message: its text without names and values."""
    text = message.rsplit(": ", 1)[-1]
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+|\{.*\}|\[.*\]", "_", text)[:80]


def invariant_problems(objects, values: dict) -> list[Problem]:
    """harness.invariants over a render of schema-valid values (the API-server
    rules run in apiserver_problems)."""
    from . import invariants
    found = invariants.check(invariants.Render(tuple(objects), values, RELEASE),
                             only=set(invariants.PER_RENDER) - {"api_server"})
    return [Problem(f"invariant {name}", m) for name, msgs in found.items() for m in msgs]


_POOL = ThreadPoolExecutor(2)


def render_both(ex: Example) -> dict:
    """major -> CompletedProcess; not cached (a long run would hold every output)."""
    futures = {m: _POOL.submit(helm.run, ex.release(m).args()) for m in helm.MAJORS}
    return {m: f.result() for m, f in futures.items()}


def _same_text(a: str, b: str) -> bool:
    """Helm 4 separates documents with a blank line more than Helm 3."""
    return [ln for ln in a.splitlines() if ln.strip()] == [ln for ln in b.splitlines() if ln.strip()]


def check(ex: Example) -> Result:
    values = merged_values(ex)
    errs = schema_errors(values)
    res = Result(ex, not errs, errs)
    procs = render_both(ex)
    for m, p in procs.items():
        res.outcome[m] = classify(p.returncode, p.stderr)
        res.stderr[m] = p.stderr
    P = res.problems.append
    outcomes = set(res.outcome.values())

    # Failures of the render itself.
    for m in helm.MAJORS:
        o, err = res.outcome[m], res.stderr[m]
        if o == "crash":
            P(Problem(crash_signature(err), f"Helm {m}: {err.strip()}"))
        elif o == "yaml":
            P(Problem(yaml_signature(err), f"Helm {m}: {err.strip()}"))
        elif o == "rule":
            for q in _rule_problems(err):
                P(Problem(q.signature, f"Helm {m}: {q.message}"))
    if res.valid and "schema" in outcomes:
        P(Problem("schema-valid values refused by Helm's schema check",
                  "jsonschema accepts the merged values; Helm says:\n" + next(
                      res.stderr[m] for m in helm.MAJORS if res.outcome[m] == "schema")))
    if not res.valid and outcomes != {"schema"}:
        P(Problem(f"schema-invalid values not refused ({'/'.join(sorted(outcomes))})",
                  "jsonschema rejects the merged values:\n  " + "\n  ".join(errs[:5]) + "\nbut Helm: " +
                  ", ".join(f"{m}: {res.outcome[m]}" for m in helm.MAJORS)))

    # The two majors agree.
    if len(outcomes) > 1:
        P(Problem("majors disagree", "\n".join(f"Helm {m}: {res.outcome[m]}\n{res.stderr[m][:1500]}"
                                               for m in helm.MAJORS)))
    elif outcomes == {"rule"}:
        b3, b4 = (rule_bullets(res.stderr[m]) for m in helm.MAJORS)
        if b3 != b4:
            P(Problem("majors disagree on rule messages", f"Helm 3: {b3}\nHelm 4: {b4}"))

    # What rendered.
    rendered = [m for m in helm.MAJORS if res.outcome[m] == "rendered"]
    if not rendered:
        return res
    parsed = {}
    for m in rendered:
        if m != rendered[0] and rendered[0] in parsed and _same_text(procs[m].stdout, procs[rendered[0]].stdout):
            parsed[m] = parsed[rendered[0]]
            continue
        try:
            parsed[m] = load(procs[m].stdout)
        except yaml.YAMLError as e:
            P(Problem("PyYAML cannot read the render", f"Helm {m}: {e}"))
    if len(parsed) == 2 and parsed["3"][0] != parsed["4"][0]:
        P(Problem("majors render different objects", "Helm 3 and Helm 4 outputs parse to different objects"))
    if not parsed:
        return res
    objects, issues = next(iter(parsed.values()))
    res.objects = objects
    res.problems += manifest_problems(objects)
    res.problems += [Problem(f"yaml {kind} {_tail(path)}", msg) for kind, path, msg in issues]
    try:
        res.problems += apiserver_problems(objects)
    except (KeyError, TypeError, AttributeError) as e:
        if not res.problems:
            res.problems.append(Problem("objects malformed", repr(e)))
    if res.valid and not res.problems:
        res.problems += invariant_problems(objects, values)
    return res


def outcome_label(res: Result) -> str:
    return f"{'valid' if res.valid else 'invalid'} -> {res.outcome.get('3')}"


def report(res: Result) -> str:
    lines = [f"Reproducer ({'schema-valid' if res.valid else 'schema-invalid'} values; "
             f"Helm 3: {res.outcome.get('3')}, Helm 4: {res.outcome.get('4')}):",
             "  " + res.example.command("3"), ""]
    if res.schema_errors:
        lines += ["jsonschema errors of the merged values:"] + ["  " + e for e in res.schema_errors[:8]] + [""]
    groups: dict[str, list[str]] = {}
    for p in res.problems:
        groups.setdefault(p.signature, []).append(p.message)
    for sig, msgs in list(groups.items())[:12]:
        lines.append(f"[{sig}]" + (f" ({len(msgs)} times)" if len(msgs) > 1 else ""))
        for msg in msgs[:3]:
            lines.append("  " + msg.replace("\n", "\n  ")[:3000])
    if len(groups) > 12:
        lines.append(f"... and {len(groups) - 12} more kinds of problem")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# A greedy shrinker for failures logged outside Hypothesis (surveys).


def _simpler_values(v):
    if isinstance(v, str):
        yield from (s for s in ("", "a", v[:1], v[: len(v) // 2], v[1:], v[:-1]) if s != v)
    elif isinstance(v, bool):
        if v:
            yield False
    elif isinstance(v, (int, float)):
        for s in (0, 1, int(v) if isinstance(v, float) and math.isfinite(v) else None, v // 2 if v else None):
            if s is not None and s != v:
                yield s
    elif isinstance(v, list):
        for i in range(len(v)):
            yield v[:i] + v[i + 1:]
        for i, x in enumerate(v):
            for s in _simpler_values(x):
                yield v[:i] + [s] + v[i + 1:]
    elif isinstance(v, dict):
        for k in v:
            yield {kk: vv for kk, vv in v.items() if kk != k}
        for k, x in v.items():
            for s in _simpler_values(x):
                yield {**v, k: s}


def minimize(ex: Example, signature: str, budget: int = 300) -> Example:
    """The smallest example (by a greedy pass) that still shows `signature`."""
    calls = 0

    def shows(candidate: Example) -> bool:
        nonlocal calls
        calls += 1
        return any(p.signature == signature for p in check(candidate).problems)

    improved = True
    while improved and calls < budget:
        improved = False
        for preset in PRESETS:  # the first preset that shows it
            if preset == ex.preset:
                break
            cand = Example(preset, ex.overrides)
            if shows(cand):
                ex, improved = cand, True
                break
        for i in range(len(ex.overrides)):  # drop an override
            cand = Example(ex.preset, ex.overrides[:i] + ex.overrides[i + 1:])
            if calls < budget and shows(cand):
                ex, improved = cand, True
                break
        if improved:
            continue
        for i, (path, text_) in enumerate(ex.overrides):  # simplify a value
            for simpler in _simpler_values(json.loads(text_)):
                if calls >= budget:
                    break
                cand = Example(ex.preset, ex.overrides[:i] + ((path, json_arg(simpler)),)
                               + ex.overrides[i + 1:])
                if shows(cand):
                    ex, improved = cand, True
                    break
            if improved:
                break
    return ex


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "minimize":
        print(__doc__)
        return 2
    firsts = {}
    for line in open(argv[1]):
        rec = json.loads(line)
        for sig in rec["signatures"]:
            firsts.setdefault(sig, rec)
    for sig, rec in firsts.items():
        ex = minimize(Example.from_json(rec["example"]), sig)
        res = check(ex)
        print(f"=== {sig}")
        print(report(res))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
