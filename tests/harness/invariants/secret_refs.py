"""Secrets only by reference, and no secret-looking string rendered in clear."""

from __future__ import annotations

import json
import re

from chartkit.pipeline import pod_templates

from .values import Render

SECRET_NAME = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL)")
SECRET_VALUE = re.compile(
    r"(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,})"
)


def secret_flow(r: Render) -> list[str]:
    """Secrets only by reference: every environment variable with a secret's
    name comes from a secretKeyRef (the Hugging Face token from
    common.huggingface.existingSecret, the vLLM key from
    serving.apiKey.existingSecret), and no secret-looking string appears in a
    ConfigMap, an env value, a command line, a label or an annotation."""
    out, v = [], r.values
    refs = {
        "HF_TOKEN": (v["common"]["huggingface"]["existingSecret"], v["common"]["huggingface"]["tokenKey"]),
        "VLLM_API_KEY": (v["serving"]["apiKey"]["existingSecret"], v["serving"]["apiKey"]["key"]),
    }
    exposed = []
    for o in r.objects:
        meta = o.get("metadata") or {}
        exposed.append((f"{o.get('kind')}/{meta.get('name')} metadata", [meta.get("labels"), meta.get("annotations")]))
        if o.get("kind") == "ConfigMap":
            exposed.append((f"ConfigMap/{meta.get('name')}", o.get("data")))
    for o, spec, meta in pod_templates(r.objects):
        where = f"{o['kind']}/{o['metadata']['name']}"
        exposed.append((f"{where} pod metadata", [meta.get("labels"), meta.get("annotations")]))
        if o["kind"] == "DeepSpeedJob":
            exposed.append((f"{where} config", o["spec"].get("config")))
        inits = spec.get("initContainers") or []
        for c in inits + (spec.get("containers") or []):
            cw = f"{where}/{c.get('name')}"
            exposed.append((f"{cw} command line", [c.get("command"), c.get("args")]))
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                exposed.append((f"{cw} {probe}", c.get(probe)))
            for e in c.get("env") or []:
                name = str(e.get("name"))
                if "value" in e:
                    exposed.append((f"{cw} env {name}", e["value"]))
                if SECRET_NAME.search(name):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if "value" in e or not ref:
                        out.append(f"{cw}: {name} is not set from a secretKeyRef")
                    elif name in refs and (ref.get("name"), ref.get("key")) != refs[name]:
                        out.append(f"{cw}: {name} from {ref}, values name {refs[name]}")
            names = {e.get("name") for e in c.get("env") or []}
            for name, (secret, _) in refs.items():
                # The token goes to every main container (the helm-test Pod's client needs none), not
                # to the init container that waits for a stage's inputs on the PVC.
                if secret and name == "HF_TOKEN" and r.component(o) != "serve-test" and c not in inits and name not in names:
                    out.append(f"{cw}: common.huggingface.existingSecret is set but {name} is not passed")
    for where, thing in exposed:
        m = SECRET_VALUE.search(json.dumps(thing))
        if m:
            out.append(f"{where}: a secret-looking value {m.group(0)[:12]}… is rendered in clear")
    return out
