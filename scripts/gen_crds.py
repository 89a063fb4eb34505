#!/usr/bin/env python3
"""Generate CustomResourceDefinitions for the T9k kinds from tests/schemas/.

No official CRD of any T9k kind is public (reference/t9k/NOTES.md §9), so the
cluster tier installs these, generated from the same JSON Schemas the offline
tier validates with: the API server then checks every DeepSpeedJob and
Notebook against what the offline tier checks. The embedded pod templates are
inlined from the Kubernetes definitions of the oldest supported version and
made structural (no $ref, one type per node, nullable instead of type lists,
int-or-string for quantities and ports, no additionalProperties: false).

    python scripts/gen_crds.py --write   # tests/crds/<plural>.<group>.yaml
    python scripts/gen_crds.py --check   # exit 1 when a file is stale (a test runs this)
"""

from __future__ import annotations

import json
import sys

import yaml

from chartkit import generated, k8s
from chartkit.chart import ROOT

OUT = ROOT / "tests" / "crds"
K8S_VERSION = k8s.K8S_VERSIONS[0]
DEFS_URI = "https://kubernetes.io/api/_definitions.json#/$defs/"
# (schema file, group, version, kind, plural, singular, short names)
KINDS = [
    ("deepspeedjob.json", "batch.tensorstack.dev", "v1beta1", "DeepSpeedJob", "deepspeedjobs", "deepspeedjob", ["dj"]),
    ("notebook.json", "tensorstack.dev", "v1beta1", "Notebook", "notebooks", "notebook", []),
]
FORMATS = {"int32", "int64", "double", "float", "byte", "date-time"}
DROP = {
    "$schema",
    "$id",
    "title",
    "x-kubernetes-group-version-kind",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-unions",
    "not",
}


def definitions() -> dict:
    path = k8s.SCHEMA_ROOT / f"v{K8S_VERSION}-local-strict" / "_definitions.json"
    return json.loads(path.read_text())["$defs"]


def structural(node, defs: dict, keep_descriptions: bool, seen: tuple = ()) -> dict:
    """One JSON Schema node as a structural OpenAPI v3 schema node."""
    if "$ref" in node:
        name = node["$ref"].removeprefix(DEFS_URI).removeprefix("#/$defs/")
        if name in seen:  # recursive type: accept anything below it
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return structural(merged, defs, False, seen + (name,))
    one_of = node.get("oneOf")
    if (
        one_of
        and {json.dumps(sorted(set(o.get("type", [])) if isinstance(o.get("type"), list) else [o.get("type")])) for o in one_of}
        >= {json.dumps(["null", "string"])}
        and len(one_of) == 2
    ):
        # IntOrString and Quantity: a string or a number
        return {"x-kubernetes-int-or-string": True}
    out: dict = {}
    for key, value in node.items():
        if key in DROP or (key == "description" and not keep_descriptions):
            continue
        if key == "type":
            types = value if isinstance(value, list) else [value]
            real = [t for t in types if t != "null"]
            out["type"] = real[0] if real else "object"
            if "null" in types:
                out["nullable"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key == "format":
            if value in FORMATS:
                out["format"] = value
        elif key == "properties":
            out["properties"] = {k: structural(v, defs, keep_descriptions, seen) for k, v in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs, keep_descriptions, seen)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = structural(value, defs, keep_descriptions, seen)
        elif key in ("oneOf", "anyOf", "allOf"):
            raise SystemExit(f"gen_crds: {key} is not structural here: {json.dumps(node)[:200]}")
        else:
            out[key] = value
    if "type" not in out and "enum" in out:
        kinds = {type(e) for e in out["enum"]}
        out["type"] = {str: "string", bool: "boolean", int: "integer", float: "number"}[kinds.pop()] if len(kinds) == 1 else "string"
    if "type" not in out and "x-kubernetes-int-or-string" not in out:
        out["type"] = "object"
    if out["type"] == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("enum") and out.get("nullable"):
        out["enum"] = [e for e in out["enum"] if e is not None]
    return out


def crd(schema_file: str, group: str, version: str, kind: str, plural: str, singular: str, short: list, defs: dict) -> dict:
    schema = json.loads((k8s.T9K_SCHEMA_DIR / schema_file).read_text())
    body = structural(schema, defs, True)
    # The API server owns the root metadata; a CRD may not constrain it.
    body["properties"]["metadata"] = {"type": "object"}
    body["properties"]["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    names = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": singular}
    if short:
        names["shortNames"] = short
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "annotations": {
                "llama-factory.chart/generated-by": f"scripts/gen_crds.py from tests/schemas/{schema_file} "
                f"and Kubernetes {K8S_VERSION} definitions"
            },
        },
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced",
            "versions": [
                {"name": version, "served": True, "storage": True, "schema": {"openAPIV3Schema": body}, "subresources": {"status": {}}}
            ],
        },
    }


def render_all() -> dict[str, str]:
    defs = definitions()
    out = {}
    for spec in KINDS:
        doc = crd(*spec, defs)
        out[f"{doc['metadata']['name']}.yaml"] = "# Generated by scripts/gen_crds.py; do not edit.\n" + yaml.safe_dump(
            doc, sort_keys=False, width=120
        )
    return out


def main(argv: list[str]) -> int:
    return generated.sync(argv, __doc__, "scripts/gen_crds.py", {OUT / n: t for n, t in render_all().items()})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
