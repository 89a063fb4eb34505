"""Strict validation of rendered objects against the Kubernetes JSON schemas
bundled with kubernetes-validate, through jsonschema with one cached validator
per (Kubernetes version, apiVersion, kind). A kind with no schema is an error,
never a pass."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_ROOT = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
# Schemas of the T9k custom resources, written from the T9k API reference; their
# pod templates $ref the core definitions of the Kubernetes version checked.
T9K_SCHEMAS = {
    ("batch.tensorstack.dev/v1beta1", "DeepSpeedJob"): "deepspeedjob.json",
    ("tensorstack.dev/v1beta1", "Notebook"): "notebook.json",
}
T9K_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "tests" / "schemas"
# Oldest and newest Kubernetes versions the chart supports (Chart.yaml kubeVersion is >=1.25;
# the harness checks the ends of the range it promises in the README).
K8S_VERSIONS = ("1.30.0", "1.37.0")


class MissingSchema(Exception):
    pass


def _schema_dir(version: str) -> Path:
    return SCHEMA_ROOT / f"v{version}-local-strict"


@functools.cache
def _registry(version: str) -> Registry:
    """Every schema file of a version, addressable by file name for $ref."""
    d = _schema_dir(version)
    if not d.is_dir():
        raise MissingSchema(f"kubernetes-validate has no schemas for Kubernetes {version}")

    @functools.cache
    def retrieve(uri: str) -> Resource:
        name = uri.rsplit("/", 1)[-1].split("#", 1)[0]
        return Resource.from_contents(json.loads((d / name).read_text()), default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)


def schema_file(api_version: str, kind: str, version: str) -> Path:
    group, _, ver = api_version.rpartition("/")
    group = group.split(".")[0] if group else ""
    parts = [kind.lower()] + ([group] if group else []) + [ver]
    return _schema_dir(version) / ("-".join(parts) + ".json")


@functools.cache
def validator(api_version: str, kind: str, version: str) -> jsonschema.protocols.Validator:
    t9k = T9K_SCHEMAS.get((api_version, kind))
    if t9k:
        schema = json.loads((T9K_SCHEMA_DIR / t9k).read_text())
        return jsonschema.Draft202012Validator(schema, registry=_registry(version))
    path = schema_file(api_version, kind, version)
    if not path.is_file():
        raise MissingSchema(f"no Kubernetes {version} schema for {api_version} {kind} ({path.name})")
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, registry=_registry(version))


@functools.cache
def definition_validator(definition: str, version: str) -> jsonschema.protocols.Validator:
    """Validator of one core definition, e.g. io.k8s.api.core.v1.PodTemplateSpec."""
    ref = {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(ref, registry=_registry(version))


def errors(obj: dict, version: str) -> list[str]:
    """Readable schema errors of one object ('' list when it is valid)."""
    v = validator(obj["apiVersion"], obj["kind"], version)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in v.iter_errors(obj)]
