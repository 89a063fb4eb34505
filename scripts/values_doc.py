#!/usr/bin/env python3
"""Write values.schema.json and the README's values table from their sources.

Also writes templates/_decimals.tpl (the decimal fields and their bounds).

Sources, one place each:
  - types, enums and bounds: SPEC below;
  - descriptions and defaults: values.yaml, whose `# --` comments document the key
    under them (helm-docs style; continuation lines start with `#`).

    python scripts/values_doc.py --write   # regenerate both files
    python scripts/values_doc.py --check   # exit 1 when either is stale (a test runs this)
"""
from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import yaml

from chartkit import generated
from chartkit.chart import STAGES

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "values.yaml"
SCHEMA = ROOT / "values.schema.json"
README = ROOT / "README.md"
DECIMALS_TPL = ROOT / "templates" / "_decimals.tpl"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"

# ---------------------------------------------------------------- the spec


def obj(props: dict, required: list | None = None, **kw) -> dict:
    # Helm drops keys whose value is null, so nullable keys cannot be required.
    req = required if required is not None else sorted(k for k, v in props.items() if "null" not in v.get("type", []))
    return {"type": "object", "additionalProperties": False, "properties": props, "required": req, **kw}


def S(**kw):
    return {"type": "string", **kw}


def I(**kw):
    return {"type": "integer", **kw}


# A decimal as text: what `--set sft.learningRate=0.00002` gives (Helm's --set makes a string of
# anything that is not an integer, a boolean or null). Plain or exponent notation, at most 32
# characters and a two-digit exponent, so that every match converts to a finite float64.
DECIMAL = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,2})?$"
BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")


def N(**kw):
    """A decimal: a number, or a numeric string (from --set). The schema bounds numbers; the
    templates convert both with float64 and check the bounds of a string (_decimals.tpl)."""
    return {"type": ["number", "string"], "pattern": DECIMAL, "maxLength": 32, **kw}


def nullint(**kw):
    return {"type": ["integer", "null"], **kw}


B = {"type": "boolean"}


def security_context():
    """A Kubernetes security context: free-form, except capabilities, which the chart edits."""
    caps = obj({"add": {"type": "array", "items": S(pattern=r"^[A-Z_]+$")},
                "drop": {"type": "array", "items": S(pattern=r"^[A-Z_]+$")}}, required=[])
    return {"type": "object", "properties": {"capabilities": caps}}
DNS = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OPT_DNS = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$"
# A key of a Secret's or ConfigMap's data (apimachinery's IsConfigMapKey): these characters,
# neither "." nor "..", and no leading "..".
DATA_KEY = r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"
REPO = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
# Kubernetes' label syntax (apimachinery's IsQualifiedName and IsValidLabelValue): keys are an
# optional DNS-subdomain prefix and a name of at most 63 characters; values at most 63.
QUALIFIED_NAME = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# An extended resource (IsExtendedResourceName): a qualified name whose prefix, a DNS subdomain, is required.
EXTENDED_RESOURCE = (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/"
                     r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
# A pod toleration (core/v1 Toleration): the fields and types the API server takes.
TOLERATION = {"type": "object", "additionalProperties": False, "properties": {
    "key": {"type": "string", "pattern": QUALIFIED_NAME},
    "operator": {"type": "string", "enum": ["Exists", "Equal"]},
    "value": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
    "effect": {"type": "string", "enum": ["", "NoSchedule", "PreferNoSchedule", "NoExecute"]},
    "tolerationSeconds": {"type": "integer"}}}
LABELS = {"type": "object", "propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 317},
          "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}}
ANNOTATIONS = {"type": "object", "propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 317},
               "additionalProperties": {"type": "string"}}
# A label selector (metav1.LabelSelector).
SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "matchLabels": copy.deepcopy(LABELS),
    "matchExpressions": {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "required": ["key", "operator"], "properties": {
            "key": {"type": "string", "pattern": QUALIFIED_NAME},
            "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
            "values": {"type": "array", "items": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}}}}}}}
MEM = {"type": "string", "pattern": r"^[1-9][0-9]*(Mi|Gi|Ti)$"}
CPU = {"oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?|[1-9][0-9]*m)$"}]}
EXTRA_ARGS = {"type": "object", "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
              "additionalProperties": {"type": ["string", "number", "boolean", "null", "array"]}}
FLAG_ARGS = {"type": "object", "propertyNames": {"pattern": r"^[a-z][a-z0-9_-]*$"},
             "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}


# A DNS subdomain (IsDNS1123Subdomain): the names of PriorityClasses, RuntimeClasses, ServiceAccounts.
SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
OPT_SUBDOMAIN = SUBDOMAIN.replace("^", "^(", 1).replace("$", ")?$")
QUEUE = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"


def placement(optional: bool = True) -> dict:
    """Where pods run: common's (optional=False, every key present) or a stage's override."""
    name = S(maxLength=253, pattern=OPT_SUBDOMAIN)
    return {"nodeSelector": copy.deepcopy(LABELS), "tolerations": {"type": "array", "items": copy.deepcopy(TOLERATION)},
            "affinity": {"type": "object"}, "priorityClassName": copy.deepcopy(name),
            "runtimeClassName": copy.deepcopy(name), "serviceAccountName": copy.deepcopy(name)}


def scheduling(priority: bool = False) -> dict:
    """A stage's `scheduling`: every key optional, each over common's."""
    props = {**placement(), "queue": S(maxLength=63, pattern=QUEUE)}
    if priority:
        props["priority"] = I(minimum=0, maximum=100)
    return obj(props, required=[])


def image_override() -> dict:
    """A stage's `image`: any field of an image, each over the default's."""
    node = image()
    for key, f in node["properties"].items():
        f.pop("minLength", None)
        if key != "digest":  # already optional
            f["pattern"] = f["pattern"].replace("^", "^(", 1).replace("$", ")?$")
    node["required"] = []
    return node


def stage_extras(priority: bool = False) -> dict:
    return {"scheduling": scheduling(priority), "image": image_override()}


def res():
    pair = lambda: obj({"cpu": copy.deepcopy(CPU), "memory": copy.deepcopy(MEM)})  # noqa: E731
    return obj({"requests": pair(), "limits": pair()})


def image():
    return obj({"registry": S(minLength=1, pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$"),
                "repository": S(minLength=1, pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$"),
                "tag": S(minLength=1, maxLength=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"),
                "digest": S(pattern=r"^(sha256:[a-f0-9]{64})?$")})


def job(extra: dict) -> dict:
    return obj({"resources": res(), "backoffLimit": I(minimum=0, maximum=100),
                "activeDeadlineSeconds": nullint(minimum=1), "ttlSecondsAfterFinished": nullint(minimum=0), **extra})


def train_stage(extra: dict | None = None) -> dict:
    return obj({
        "datasets": {"type": "array", "minItems": 1, "uniqueItems": True, "items": S(pattern=r"^[A-Za-z0-9_.-]+$")},
        "learningRate": N(exclusiveMinimum=0, maximum=1),
        "numTrainEpochs": N(exclusiveMinimum=0, maximum=1000),
        "maxSteps": I(minimum=-1),
        "batchPerGpu": I(minimum=1, maximum=65536),
        "perDeviceTrainBatchSize": nullint(minimum=1, maximum=4096),
        "gradientAccumulationSteps": nullint(minimum=1, maximum=4096),
        "lrSchedulerType": S(enum=["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                                   "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau",
                                   "cosine_with_min_lr", "warmup_stable_decay"]),
        "warmupRatio": N(minimum=0, maximum=1),
        "loggingSteps": I(minimum=1),
        "saveSteps": I(minimum=1),
        "valSize": N(minimum=0, exclusiveMaximum=1),
        "evalSteps": I(minimum=1),
        "perDeviceEvalBatchSize": I(minimum=1, maximum=4096),
        "cutoffLen": nullint(minimum=16, maximum=1048576),
        "extraArgs": copy.deepcopy(EXTRA_ARGS),
        **(extra or {}),
    })


DATASET = {
    "type": "object", "additionalProperties": False, "minProperties": 1,
    "properties": {"hf_hub_url": S(), "ms_hub_url": S(), "om_hub_url": S(), "script_url": S(), "cloud_file_name": S(),
                   "file_name": S(), "formatting": S(enum=["alpaca", "sharegpt", "openai"]), "ranking": B,
                   "subset": S(), "split": S(), "folder": S(), "num_samples": I(minimum=1),
                   "columns": {"type": "object", "additionalProperties": S()},
                   "tags": {"type": "object", "additionalProperties": S()}},
    "anyOf": [{"required": [k]} for k in ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "file_name", "cloud_file_name")],
}


def spec() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "llama-factory chart values",
        "type": "object",
        "additionalProperties": False,
        "required": ["stages", "pipeline", "model", "images", "common", "storage", "notebook", "download", "datasets",
                     "training", "sft", "dpo", "merge", "eval", "serving"],
        "properties": {
            "global": {"type": "object", "description": "Helm's global values (unused by this chart)."},
            "stages": {"type": "array", "minItems": 1, "uniqueItems": True,
                       "items": S(enum=list(STAGES))},
            "pipeline": obj({
                "waitTimeoutSeconds": I(minimum=60, maximum=31536000),
                "waitIntervalSeconds": I(minimum=1, maximum=3600),
            }),
            "run": S(maxLength=40, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"),
            "nameOverride": S(maxLength=40, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"),
            "fullnameOverride": S(maxLength=63, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"),
            "model": obj({
                "name": S(minLength=1, maxLength=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
                "parametersBillion": N(exclusiveMinimum=0, maximum=2000),
                "numKeyValueHeads": I(minimum=1, maximum=1024),
                "hiddenSize": I(minimum=64, maximum=65536), "numLayers": I(minimum=1, maximum=1024),
                "vocabSize": I(minimum=2, maximum=10000000),
                "template": S(minLength=1, pattern=r"^[A-Za-z0-9_.-]+$"),
                "source": S(enum=["huggingface", "modelscope"]),
                "huggingfaceRepo": S(pattern=REPO),
                "modelscopeRepo": S(pattern=REPO),
                "revision": S(minLength=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"),
                "excludePatterns": {"type": "array", "items": S(minLength=1)},
            }),
            "images": obj({k: image() for k in ("llamaFactory", "vllm", "notebook", "test")}),
            "common": obj({
                "imageRegistry": S(pattern=r"^([A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*)?$"),
                "imagePullPolicy": S(enum=["Always", "IfNotPresent", "Never"]),
                "imagePullSecrets": {"type": "array", "items": S(maxLength=253, pattern=DNS)},
                "scheduler": obj({"queue": S(maxLength=63, pattern=QUEUE),
                                  "priority": I(minimum=0, maximum=100)}),
                **placement(),
                "labels": copy.deepcopy(LABELS),
                "podLabels": copy.deepcopy(LABELS),
                "podAnnotations": copy.deepcopy(ANNOTATIONS),
                "extraEnv": {"type": "object", "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                             "additionalProperties": {"oneOf": [S(), {"type": "number"}, B,
                                                                obj({"valueFrom": {"type": "object"}})]}},
                "extraVolumes": {"type": "object", "propertyNames": {"pattern": DNS, "maxLength": 63},
                                 "additionalProperties": obj({"mountPath": S(pattern=r"^/[A-Za-z0-9._/-]*$"), "readOnly": B,
                                                              "source": {"type": "object", "minProperties": 1, "maxProperties": 1}},
                                                             required=["mountPath", "source"])},
                "gpu": obj({"resourceName": S(pattern=EXTENDED_RESOURCE.replace("^", "^(", 1).replace("$", ")?$")),
                            "memoryGiB": N(minimum=1, maximum=4096),
                            "nodeSelector": copy.deepcopy(LABELS),
                            "tolerations": {"type": "array", "items": copy.deepcopy(TOLERATION)}}),
                "huggingface": obj({"endpoint": S(pattern=r"^(https?://.+)?$"),
                                    "existingSecret": S(maxLength=253, pattern=OPT_DNS), "tokenKey": S(maxLength=253, pattern=DATA_KEY)}),
                "automountServiceAccountToken": B,
                "podSecurityContext": {"type": "object"},
                "containerSecurityContext": security_context(),
            }),
            "storage": obj({
                "name": S(minLength=1, maxLength=253, pattern=DNS),
                "existingClaim": S(maxLength=253, pattern=OPT_DNS),
                "size": copy.deepcopy(MEM),
                "storageClass": S(maxLength=253, pattern=OPT_DNS),
                "accessModes": {"type": "array", "minItems": 1, "uniqueItems": True,
                                "items": S(enum=["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"])},
                "annotations": copy.deepcopy(ANNOTATIONS),
                "mountPath": S(pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$"),
            }),
            "notebook": obj({
                "enabled": B, "type": S(enum=["jupyter", "rstudio"]), "suspend": B, "gpus": I(minimum=0, maximum=16),
                "resources": res(), "shmSize": copy.deepcopy(MEM),
                "ssh": obj({"enabled": B, "authorizedKeys": {"type": "array", "items": S(pattern=DNS)},
                            "serviceType": S(enum=["ClusterIP", "NodePort"])}),
                **stage_extras(),
            }),
            "download": job({"enabled": B, "datasets": B, **stage_extras()}),
            "datasets": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": r"^[A-Za-z0-9_.-]+$"},
                         "additionalProperties": DATASET},
            "training": obj({
                "workers": I(minimum=1, maximum=512), "gpusPerWorker": I(minimum=1, maximum=16),
                "method": S(enum=["lora", "qlora", "full"]), "quantizationBits": I(enum=[4, 8]),
                "lora": obj({"rank": I(minimum=1, maximum=1024), "alpha": nullint(minimum=1),
                             "dropout": N(minimum=0, maximum=1), "target": S(minLength=1)}),
                "deepspeed": obj({"zeroStage": I(enum=[0, 1, 2, 3]), "offloadOptimizer": B, "offloadParams": B,
                                  "extraConfig": {"type": "object"}}),
                "bf16": B, "cutoffLen": I(minimum=16, maximum=1048576),
                "preprocessingNumWorkers": I(minimum=1, maximum=512),
                "overwriteCache": B, "ddpTimeout": I(minimum=60),
                "flashAttn": S(enum=["auto", "disabled", "sdpa", "fa2", "fa3"]),
                "enableLigerKernel": B, "gradientCheckpointing": {"type": ["boolean", "null"]},
                "gradientCheckpointingLayers": nullint(minimum=1, maximum=1024), "plotLoss": B,
                "overwriteOutputDir": B,
                "cudaAllocConf": S(pattern=r"^([a-z_]+:[A-Za-z0-9_.]+(,[a-z_]+:[A-Za-z0-9_.]+)*)?$"),
                "saveTotalLimit": nullint(minimum=1),
                "reportTo": S(enum=["none", "all", "tensorboard", "wandb", "mlflow", "swanlab", "trackio"]),
                "extraArgs": copy.deepcopy(EXTRA_ARGS),
                "resources": res(), "shmSize": copy.deepcopy(MEM),
                "restartPolicy": S(enum=["Always", "OnFailure", "Never", "ExitCode"]),
                "backoffLimit": I(minimum=0, maximum=100), "activeDeadlineSeconds": nullint(minimum=1),
                "cleanUpPolicy": S(enum=["All", "Unfinished", "None"]),
                "podShape": S(enum=["restricted", "conventional"]),
                "multiWorkerSecurityContext": security_context(),
                "rdma": obj({"enabled": B, "resourceName": S(pattern=EXTENDED_RESOURCE)}),
            }),
            "sft": train_stage({"packing": B, **stage_extras(priority=True)}),
            "dpo": train_stage({"prefBeta": N(exclusiveMinimum=0, maximum=100),
                                "prefLoss": S(enum=["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"]),
                                **stage_extras(priority=True)}),
            "merge": job({"exportSize": I(minimum=1, maximum=100), "exportDevice": S(enum=["cpu", "auto"]),
                          "exportLegacyFormat": B, "gpus": I(minimum=0, maximum=16),
                          "extraArgs": copy.deepcopy(EXTRA_ARGS), **stage_extras()}),
            "eval": job({"model": S(enum=["base", "sft", "dpo"]),
                         "tasks": {"type": "array", "minItems": 1, "uniqueItems": True,
                                   "items": S(pattern=r"^[A-Za-z0-9_.-]+$")},
                         "numFewshot": I(minimum=0, maximum=100),
                         "batchSize": {"oneOf": [I(minimum=1), S(pattern=r"^auto(:[0-9]+)?$")]},
                         "gpus": I(minimum=1, maximum=16), "shmSize": copy.deepcopy(MEM),
                         "extraArgs": copy.deepcopy(FLAG_ARGS), **stage_extras()}),
            "serving": obj({
                "model": S(enum=["base", "sft", "dpo"]), "lora": B,
                "servedModelName": S(maxLength=128, pattern=r"^[A-Za-z0-9._/-]*$"),
                "replicas": I(minimum=0, maximum=100), "tensorParallelSize": I(minimum=1, maximum=16),
                "maxModelLen": I(minimum=128, maximum=131072), "gpuMemoryUtilization": N(exclusiveMinimum=0, maximum=1),
                "maxLoras": I(minimum=1, maximum=64),
                "apiKey": obj({"existingSecret": S(maxLength=253, pattern=OPT_DNS), "key": S(maxLength=253, pattern=DATA_KEY)}),
                "extraArgs": copy.deepcopy(FLAG_ARGS),
                "resources": res(), "shmSize": copy.deepcopy(MEM),
                "service": obj({"type": S(enum=["ClusterIP", "NodePort", "LoadBalancer"]),
                                "port": I(minimum=1, maximum=65535)}),
                "startupProbe": obj({"periodSeconds": I(minimum=1, maximum=300),
                                     "failureThreshold": I(minimum=1, maximum=10000)}),
                "progressDeadlineSeconds": I(minimum=60),
                "networkPolicy": obj({"enabled": B, "allowSameNamespace": B, "from": {
                    "type": "object", "propertyNames": {"pattern": DNS, "maxLength": 63},
                    "additionalProperties": obj({"podSelector": copy.deepcopy(SELECTOR),
                                                 "namespaceSelector": copy.deepcopy(SELECTOR)},
                                                required=[], minProperties=1)}}),
                **stage_extras(),
            }),
        },
        "$defs": {},
    }


# ----------------------------------------------------- values.yaml comments

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")


def documented_keys(text: str) -> dict[str, str]:
    """Map of dotted key path → description, from the `# --` comments."""
    docs: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        m = KEY.match(line)
        if not m or stripped.startswith("-"):
            pending = None
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m["key"]))
        path = ".".join(k for _, k in stack)
        if pending is not None:
            docs[path] = " ".join(p for p in pending if p)
        pending = None
    return docs


def get_path(values: dict, path: str):
    node = values
    for part in path.split("."):
        node = node[part]
    return node


def schema_node(schema: dict, path: str) -> dict:
    node = schema
    for part in path.split("."):
        node = node["properties"][part]
    return node


def leaves(values, prefix=""):
    """Dotted paths of every leaf of the values (lists and empty maps are leaves)."""
    if isinstance(values, dict) and values:
        for k, v in values.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def undocumented(values: dict, docs: dict[str, str]) -> list[str]:
    """Leaves of values.yaml with no documented ancestor-or-self."""
    out = []
    for leaf in leaves(values):
        parts = leaf.split(".")
        if not any(".".join(parts[:i]) in docs for i in range(1, len(parts) + 1)):
            out.append(leaf)
    return out


def type_name(node: dict) -> str:
    if "oneOf" in node:
        return " or ".join(type_name(n) for n in node["oneOf"])
    t = node.get("type", "any")
    if isinstance(t, list):
        return " or ".join(x for x in t if x != "null") + (" or null" if "null" in t else "")
    if t == "string" and "enum" in node:
        return "string (" + ", ".join(f"`{e}`" for e in node["enum"]) + ")"
    if t == "integer" and "enum" in node:
        return "integer (" + ", ".join(str(e) for e in node["enum"]) + ")"
    return t


def decimal_fields(schema: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Dotted paths and bounds of every decimal node (N) of the schema."""
    out = []
    for key, node in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        if node.get("type") == ["number", "string"] and node.get("pattern") == DECIMAL:
            out.append((path, {k: node[k] for k in BOUNDS if k in node}))
        out += decimal_fields(node, path)
    return out


def decimals_tpl(schema: dict) -> str:
    """templates/_decimals.tpl: the decimal fields and their bounds, for the rule that checks a
    decimal given as text (the schema's bounds only apply to numbers)."""
    rows = ",\n".join(f"  [{json.dumps(path)}, {json.dumps(b, sort_keys=True)}]" for path, b in decimal_fields(schema))
    return ("{{/*\nGenerated by scripts/values_doc.py from its schema spec: do not edit.\n"
            "Every decimal value (a number, or a numeric string such as `--set sft.learningRate=0.00002`\n"
            "gives) with its schema bounds: the templates read these values through float64, and\n"
            "llama-factory.validate checks the bounds of one given as text.\n*/}}\n"
            "{{- define \"llama-factory.decimalFields\" -}}\n[\n" + rows + "\n]\n{{- end }}\n")


def build(values_text: str) -> tuple[str, str]:
    """The schema text and the README table for a values.yaml text."""
    values = yaml.safe_load(values_text)
    docs = documented_keys(values_text)
    missing = undocumented(values, docs)
    if missing:
        raise SystemExit("values.yaml: no `# --` comment documents " + ", ".join(missing))
    # A JSON round trip unshares the nodes spec() reuses (B, the boolean node, is one dict for
    # every boolean field): each field gets its own description, not the last one written.
    schema = json.loads(json.dumps(spec()))
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for path, text in docs.items():
        node = schema_node(schema, path)
        node["description"] = text
        default = json.dumps(get_path(values, path), ensure_ascii=False)
        if len(default) > 60:
            default = "see values.yaml"
        cell = lambda s: s.replace("|", "\\|")  # noqa: E731
        rows.append(f"| `{path}` | {cell(type_name(node))} | `{cell(default)}` | {cell(text)} |")
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n", "\n".join(rows) + "\n"


def render() -> tuple[str, str]:
    schema_text, table = build(VALUES.read_text())
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no {BEGIN} … {END} block")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return schema_text, f"{head}{BEGIN}\n{table}{END}{tail}"


def main(argv: list[str]) -> int:
    schema_text, readme_text = render()
    return generated.sync(argv, __doc__, "scripts/values_doc.py",
                          {SCHEMA: schema_text, README: readme_text, DECIMALS_TPL: decimals_tpl(spec())})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
