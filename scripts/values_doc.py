#!/usr/bin/env python3
"""Write values.schema.json, the README's values table and templates/_decimals.tpl from values.yaml.

Every fact about a value lives next to its key in values.yaml:
  - its default: the value itself;
  - its text: the `# --` comment above it (helm-docs style; continuation lines start with `#`);
  - its type and bounds: a `# @schema` line above it (under the text), read here.

The annotation is `;`-separated `name:value` pairs, the convention of the helm-values-schema-json
plugin, applied in the order written:

    # -- Seconds between two looks at the inputs while waiting.
    # @schema minimum:1;maximum:3600
    waitIntervalSeconds: 30

  - a value is YAML flow (`3600`, `true`, `[integer, null]`, `[lora, qlora, full]`,
    `[{type: integer}, …]`), except a `pattern`'s, which is the raw text up to the next `;` (a
    pattern with a `;` belongs in a named fragment);
  - a dotted name sets a key inside a sub-node: `items.type:string;items.minLength:1`;
  - `$ref:NAME` copies the named fragment of FRAGMENTS below into the node at that point (the
    schema stays self-contained: fragments are inlined, not JSON `$ref`s); `items.$ref:NAME`
    copies one into a sub-node. Fragments are the shapes worth a name: Kubernetes labels,
    tolerations, resources, images, scheduling, security contexts, the decimal, the stage list,
    and the name patterns (`dns`, `optionalDns`, …) many keys share;
  - `required:false` leaves the key out of its parent's `required` list (a string default
    counts as required otherwise; a key whose type admits null never is: Helm drops null keys).

The type may be left out where the default says it: a string default gives `string`, an integer
`integer`, a boolean `boolean` (it goes first in the node, before the annotation's keys). An
annotation says it for every other default: null (`type:[integer, null]`), a decimal
(`$ref:decimal`, which also takes `--set`'s text), a list (`type:array` and its items), a map
that is not a block of documented keys (`type:object`, or a fragment). A map default without an
annotation is a block of keys: an object with exactly its keys. A key whose type cannot be
resolved stops the script (a test checks every leaf of values.yaml resolves).

Over 400 lines for one reason: the named fragments (the Kubernetes shapes and name patterns an
annotation can name, about 170 lines) sit beside the reader that resolves them.

    python scripts/values_doc.py --write   # regenerate the three files
    python scripts/values_doc.py --check   # exit 1 when one is stale (a test runs this)
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

# ------------------------------------------------------------- named fragments


def obj(props: dict, required: list | None = None, **kw) -> dict:
    # Helm drops keys whose value is null, so nullable keys cannot be required.
    req = required if required is not None else sorted(k for k, v in props.items() if not nullable(v))
    return {"type": "object", "additionalProperties": False, "properties": props, "required": req, **kw}


def nullable(node: dict) -> bool:
    t = node.get("type", [])
    return "null" in (t if isinstance(t, list) else [t])


def S(**kw):
    return {"type": "string", **kw}


def I(**kw):
    return {"type": "integer", **kw}


B = {"type": "boolean"}

# A decimal as text: what `--set sft.learningRate=0.00002` gives (Helm's --set makes a string of
# anything that is not an integer, a boolean or null). Plain or exponent notation, at most 32
# characters and a two-digit exponent, so that every match converts to a finite float64.
DECIMAL = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,2})?$"
BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")

DNS = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OPT_DNS = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$"
# A key of a Secret's or ConfigMap's data (apimachinery's IsConfigMapKey): these characters,
# neither "." nor "..", and no leading "..".
DATA_KEY = r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"
REPO = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
# Kubernetes' label syntax (apimachinery's IsQualifiedName and IsValidLabelValue): keys are an
# optional DNS-subdomain prefix and a name of at most 63 characters; values at most 63.
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# An extended resource (IsExtendedResourceName): a qualified name whose prefix, a DNS subdomain, is required.
EXTENDED_RESOURCE = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
# A DNS subdomain (IsDNS1123Subdomain): the names of PriorityClasses, RuntimeClasses, ServiceAccounts.
SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A DNS label or nothing: a run's name, a name override, a T9k queue.
OPT_LABEL = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"


def optional(pattern: str) -> str:
    """The pattern, or the empty string."""
    return pattern.replace("^", "^(", 1).replace("$", ")?$")


# A pod toleration (core/v1 Toleration): the fields and types the API server takes.
TOLERATION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "pattern": QUALIFIED_NAME},
        "operator": {"type": "string", "enum": ["Exists", "Equal"]},
        "value": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
        "effect": {"type": "string", "enum": ["", "NoSchedule", "PreferNoSchedule", "NoExecute"]},
        "tolerationSeconds": {"type": "integer"},
    },
}
LABELS = {
    "type": "object",
    "propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 317},
    "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
}
ANNOTATIONS = {"type": "object", "propertyNames": {"pattern": QUALIFIED_NAME, "maxLength": 317}, "additionalProperties": {"type": "string"}}
# A label selector (metav1.LabelSelector).
SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": copy.deepcopy(LABELS),
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string", "pattern": QUALIFIED_NAME},
                    "operator": {"type": "string", "enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}},
                },
            },
        },
    },
}
MEM = {"type": "string", "pattern": r"^[1-9][0-9]*(Mi|Gi|Ti)$"}
CPU = {"oneOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?|[1-9][0-9]*m)$"}]}
EXTRA_ARGS = {
    "type": "object",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
    "additionalProperties": {"type": ["string", "number", "boolean", "null", "array"]},
}
FLAG_ARGS = {
    "type": "object",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_-]*$"},
    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
}


def security_context():
    """A Kubernetes security context: free-form, except capabilities, which the chart edits."""
    caps = obj(
        {"add": {"type": "array", "items": S(pattern=r"^[A-Z_]+$")}, "drop": {"type": "array", "items": S(pattern=r"^[A-Z_]+$")}},
        required=[],
    )
    return {"type": "object", "properties": {"capabilities": caps}}


def scheduling(priority: bool = False) -> dict:
    """A stage's `scheduling`: every key optional, each over common's."""
    name = S(maxLength=253, pattern=optional(SUBDOMAIN))
    props = {
        "nodeSelector": copy.deepcopy(LABELS),
        "tolerations": {"type": "array", "items": copy.deepcopy(TOLERATION)},
        "affinity": {"type": "object"},
        "priorityClassName": copy.deepcopy(name),
        "runtimeClassName": copy.deepcopy(name),
        "serviceAccountName": copy.deepcopy(name),
        "queue": S(maxLength=63, pattern=OPT_LABEL),
    }
    if priority:
        props["priority"] = I(minimum=0, maximum=100)
    return obj(props, required=[])


def image():
    return obj(
        {
            "registry": S(minLength=1, pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$"),
            "repository": S(minLength=1, pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$"),
            "tag": S(minLength=1, maxLength=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"),
            "digest": S(pattern=r"^(sha256:[a-f0-9]{64})?$"),
        }
    )


def image_override() -> dict:
    """A stage's `image`: any field of an image, each over the default's."""
    node = image()
    for key, f in node["properties"].items():
        f.pop("minLength", None)
        if key != "digest":  # already optional
            f["pattern"] = optional(f["pattern"])
    node["required"] = []
    return node


def resources():
    pair = lambda: obj({"cpu": copy.deepcopy(CPU), "memory": copy.deepcopy(MEM)})  # noqa: E731
    return obj({"requests": pair(), "limits": pair()})


DATASET = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "hf_hub_url": S(),
        "ms_hub_url": S(),
        "om_hub_url": S(),
        "script_url": S(),
        "cloud_file_name": S(),
        "file_name": S(),
        "formatting": S(enum=["alpaca", "sharegpt", "openai"]),
        "ranking": B,
        "subset": S(),
        "split": S(),
        "folder": S(),
        "num_samples": I(minimum=1),
        "columns": {"type": "object", "additionalProperties": S()},
        "tags": {"type": "object", "additionalProperties": S()},
    },
    "anyOf": [{"required": [k]} for k in ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "file_name", "cloud_file_name")],
}

# The fragments an annotation names with `$ref:NAME`, each copied where it is used.
FRAGMENTS: dict[str, dict] = {
    # Whole nodes.
    "decimal": {"type": ["number", "string"], "pattern": DECIMAL, "maxLength": 32},
    "stages": {"type": "array", "minItems": 1, "uniqueItems": True, "items": S(enum=list(STAGES))},
    "image": image(),
    "imageOverride": image_override(),
    "resources": resources(),
    "memory": MEM,
    "scheduling": scheduling(),
    "schedulingWithPriority": scheduling(priority=True),
    "labels": LABELS,
    "annotations": ANNOTATIONS,
    "tolerations": {"type": "array", "items": TOLERATION},
    "securityContext": security_context(),
    "extraArgs": EXTRA_ARGS,
    "flagArgs": FLAG_ARGS,
    "extraEnv": {
        "type": "object",
        "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": {"oneOf": [S(), {"type": "number"}, B, obj({"valueFrom": {"type": "object"}})]},
    },
    "extraVolumes": {
        "type": "object",
        "propertyNames": {"pattern": DNS, "maxLength": 63},
        "additionalProperties": obj(
            {
                "mountPath": S(pattern=r"^/[A-Za-z0-9._/-]*$"),
                "readOnly": B,
                "source": {"type": "object", "minProperties": 1, "maxProperties": 1},
            },
            required=["mountPath", "source"],
        ),
    },
    "datasets": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": r"^[A-Za-z0-9_.-]+$"}, "additionalProperties": DATASET},
    "networkPeers": {
        "type": "object",
        "propertyNames": {"pattern": DNS, "maxLength": 63},
        "additionalProperties": obj({"podSelector": SELECTOR, "namespaceSelector": SELECTOR}, required=[], minProperties=1),
    },
    # Name patterns (a `pattern` only: the annotation adds the type and lengths).
    "dns": {"pattern": DNS},
    "optionalDns": {"pattern": OPT_DNS},
    "optionalDnsLabel": {"pattern": OPT_LABEL},
    "optionalSubdomain": {"pattern": optional(SUBDOMAIN)},
    "dataKey": {"pattern": DATA_KEY},
    "hubRepo": {"pattern": REPO},
    "extendedResource": {"pattern": EXTENDED_RESOURCE},
    "optionalExtendedResource": {"pattern": optional(EXTENDED_RESOURCE)},
}

# The root: what is not a key of values.yaml.
HEADER = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "llama-factory chart values"}
GLOBAL = {"type": "object", "description": "Helm's global values (unused by this chart)."}

# ----------------------------------------------------- values.yaml comments

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")
ANNOTATION = "# @schema"


def comments(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Maps of dotted key path → description (the `# --` comments) and → annotation pairs
    (the `# @schema` lines), of the key under them."""
    docs: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    pairs: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(ANNOTATION):
            pairs += [p.strip() for p in stripped[len(ANNOTATION) :].split(";") if p.strip()]
            continue
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        m = KEY.match(line)
        if not m or stripped.startswith("-"):
            if pairs:
                raise SystemExit(f"values.yaml: `{ANNOTATION}` above a line that is not a key: {line!r}")
            pending = None
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m["key"]))
        path = ".".join(k for _, k in stack)
        if pending is not None:
            docs[path] = " ".join(p for p in pending if p)
        if pairs:
            notes[path] = pairs
        pending, pairs = None, []
    return docs, notes


def documented_keys(text: str) -> dict[str, str]:
    """Map of dotted key path → description, from the `# --` comments."""
    return comments(text)[0]


# -------------------------------------------------------- types and bounds


def annotated(path: str, pairs: list[str]) -> tuple[dict, dict]:
    """The schema keys and the control keys (`required`) of one key's annotation."""
    node: dict = {}
    control: dict = {}
    for pair in pairs:
        name, sep, raw = pair.partition(":")
        name = name.strip()
        if not sep or not name:
            raise SystemExit(f"values.yaml: {path}: `{pair}` is not `name:value`")
        *parents, last = name.split(".")
        if last == "pattern":
            value = raw.strip()
        else:
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise SystemExit(f"values.yaml: {path}: `{pair}`: {e}") from None
        if last == "type" and isinstance(value, list):
            value = ["null" if t is None else t for t in value]  # YAML reads `null` as None
        if name == "required":
            if not isinstance(value, bool):
                raise SystemExit(f"values.yaml: {path}: `required` is true or false")
            control["required"] = value
            continue
        target = node
        for part in parents:
            target = target.setdefault(part, {})
        if last == "$ref":
            if value not in FRAGMENTS:
                raise SystemExit(f"values.yaml: {path}: no fragment named {value!r} (values_doc.FRAGMENTS)")
            target.update(copy.deepcopy(FRAGMENTS[value]))
        else:
            target[last] = value
    return node, control


def inferred(path: str, default) -> str:
    """The type a default gives, where it says one."""
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, int):
        return "integer"
    if isinstance(default, str):
        return "string"
    need = {
        type(None): "null: say its type, e.g. `type:[integer, null]`",
        float: "a decimal: `$ref:decimal` (a number, or the text `--set` gives)",
        list: "a list: `type:array` and its `items.…`",
        dict: "an empty map: `type:object` or a `$ref` fragment",
    }.get(type(default), f"a {type(default).__name__}")
    raise SystemExit(f"values.yaml: {path} has no `{ANNOTATION}` type and its default is {need}")


def check_enum(path: str, node: dict) -> None:
    """An enum's entries are of the node's type (YAML reads `no` as false, `1.0` as a number)."""
    kinds = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}
    for sub in (node, node.get("items", {})):
        t = sub.get("type")
        if "enum" in sub and isinstance(t, str) and t in kinds:
            bad = [e for e in sub["enum"] if not isinstance(e, kinds[t]) or (t != "boolean" and isinstance(e, bool))]
            if bad:
                raise SystemExit(f"values.yaml: {path}: enum entries {bad} are not of type {t}")


def schema_of(path: str, default, notes: dict[str, list[str]], used: set[str]) -> tuple[dict, dict]:
    """The schema node of one key (and its annotation's control keys)."""
    node, control = annotated(path, notes.get(path, []))
    used.add(path)
    if not node and isinstance(default, dict) and default:
        return block(path, default, notes, used), control
    if "type" not in node and "oneOf" not in node:
        node = {"type": inferred(path, default), **node}
    check_enum(path, node)
    return node, control


def block(prefix: str, values: dict, notes: dict[str, list[str]], used: set[str]) -> dict:
    """A map of documented keys: an object with exactly its keys."""
    props, optional_keys = {}, set()
    for key, default in values.items():
        path = f"{prefix}.{key}" if prefix else key
        props[key], control = schema_of(path, default, notes, used)
        if control.get("required") is False:
            optional_keys.add(key)
    node = obj(props)
    node["required"] = [k for k in node["required"] if k not in optional_keys]
    return node


def spec(values: dict, notes: dict[str, list[str]]) -> dict:
    """The schema (without descriptions) of values.yaml's keys and annotations."""
    used: set[str] = set()
    body = block("", values, notes, used)
    stray = sorted(set(notes) - used)
    if stray:
        raise SystemExit("values.yaml: annotations inside a key whose type comes from its own annotation: " + ", ".join(stray))
    # The root's `required` keeps values.yaml's order (an object's own list is sorted).
    required = [k for k in values if k in body["required"]]
    return {
        **HEADER,
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {"global": copy.deepcopy(GLOBAL), **body["properties"]},
        "$defs": {},
    }


# ------------------------------------------------------------ the outputs


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


def resolve(schema: dict, path: str) -> dict | None:
    """The schema node that checks the value at a dotted path: its own node, or the node of a
    free-form map or map of entries it sits in; None when the schema has no place for it."""
    node = schema
    for part in path.split("."):
        if part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        elif node.get("type") == "object" and "additionalProperties" not in node:
            return node  # free-form: the whole map is one value
        else:
            return None
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
    """Dotted paths and bounds of every decimal node (`$ref:decimal`) of the schema."""
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
    return (
        "{{/*\nGenerated by scripts/values_doc.py from its schema spec: do not edit.\n"
        "Every decimal value (a number, or a numeric string such as `--set sft.learningRate=0.00002`\n"
        "gives) with its schema bounds: the templates read these values through float64, and\n"
        "llama-factory.validate checks the bounds of one given as text.\n*/}}\n"
        '{{- define "llama-factory.decimalFields" -}}\n[\n' + rows + "\n]\n{{- end }}\n"
    )


def build(values_text: str) -> tuple[dict, str]:
    """The schema (with descriptions) and the README table for a values.yaml text."""
    values = yaml.safe_load(values_text)
    docs, notes = comments(values_text)
    missing = undocumented(values, docs)
    if missing:
        raise SystemExit("values.yaml: no `# --` comment documents " + ", ".join(missing))
    # A JSON round trip unshares the nodes the fragments reuse: each field gets its own
    # description, not the last one written.
    schema = json.loads(json.dumps(spec(values, notes)))
    unplaced = [leaf for leaf in leaves(values) if resolve(schema, leaf) is None]
    if unplaced:
        raise SystemExit("values.yaml: the schema has no place for " + ", ".join(unplaced))
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for path, text in docs.items():
        node = schema_node(schema, path)
        node["description"] = text
        default = json.dumps(get_path(values, path), ensure_ascii=False)
        if len(default) > 60:
            default = "see values.yaml"
        cell = lambda s: s.replace("|", "\\|")  # noqa: E731
        rows.append(f"| `{path}` | {cell(type_name(node))} | `{cell(default)}` | {cell(text)} |")
    return schema, "\n".join(rows) + "\n"


def render() -> dict[Path, str]:
    """Every generated file's text."""
    schema, table = build(VALUES.read_text())
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no {BEGIN} … {END} block")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return {
        SCHEMA: json.dumps(schema, indent=2, ensure_ascii=False) + "\n",
        README: f"{head}{BEGIN}\n{table}{END}{tail}",
        DECIMALS_TPL: decimals_tpl(schema),
    }


def main(argv: list[str]) -> int:
    return generated.sync(argv, __doc__, "scripts/values_doc.py", render())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
