"""What the chart asks of vLLM: every HTTP request is a route of the pinned version
(tests/peer/vllm_routes.json), on vLLM's port, with the key where vLLM wants it; clients ask
for the name vLLM serves."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from chartkit.chart import ROOT
from chartkit.pipeline import pod_spec

from .paths import model_source
from .reading import flags
from .values import Render

ROUTES = ROOT / "tests" / "peer" / "vllm_routes.json"


@cache
def route_table(path: Path = ROUTES) -> dict:
    return json.loads(Path(path).read_text())


def _route_ok(table: dict, method: str, path: str, env: set, args: set) -> str | None:
    """None when `method path` is served by vLLM with this container's env/flags; else why not."""
    for rt in table["routes"]:
        if rt["path"] == path or (rt.get("prefix") and (path == rt["path"] or path.startswith(rt["path"] + "/"))):
            if method not in rt["methods"]:
                continue
            cond = rt.get("condition")
            if cond and cond.get("env") and cond["env"] not in env:
                return f"{method} {path} exists only with {cond['env']} set"
            if cond and cond.get("flag") and cond["flag"] not in args:
                return f"{method} {path} exists only with --{cond['flag']}"
            return None
    return f"vLLM {table['vllm_version']} serves no {method} {path}"


_URL = re.compile(r"http://([^/:\"'\s]+):(\d+)(/[\w/{}.$-]*)")


def vllm_routes(r: Render) -> list[str]:
    """Every HTTP request the chart makes of vLLM - the startup, readiness and
    liveness probes and the helm test's calls - is a route of the pinned vLLM
    version (tests/peer/vllm_routes.json, read from vLLM's own source), on the
    port vLLM listens on (--port, the container port `http`, the Service's
    targetPort), sent with the API key when vLLM's auth middleware guards the
    route and a key is configured."""
    out, v = [], r.values
    table = route_table()
    auth_prefix = table["auth"]["prefix"]
    keyed = bool(v["serving"]["apiKey"]["existingSecret"])
    svc_port = {}
    for svc in r.of("Service"):
        for p in svc["spec"].get("ports") or []:
            svc_port[svc["metadata"]["name"]] = (p.get("port"), p.get("targetPort"))
    for d in r.of("Deployment"):
        (c,) = pod_spec(d)["containers"]
        where = f"Deployment/{d['metadata']['name']}"
        f = flags((c.get("args") or [])[1:])
        port = int(f.get("port", 8000)) if str(f.get("port", "8000")).isdigit() else f.get("port")
        env = {e.get("name") for e in c.get("env") or []}
        args = set(f)
        cports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        if cports.get("http") != port:
            out.append(f"{where}: vLLM listens on --port={port}, the container port http is {cports.get('http')}")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            pr = c.get(probe)
            if not pr:
                out.append(f"{where}: no {probe}")
                continue
            if "httpGet" in pr:
                path = pr["httpGet"].get("path", "/")
                why = _route_ok(table, "GET", path, env, args)
                if why:
                    out.append(f"{where} {probe}: {why}")
                if keyed and path.startswith(auth_prefix) and not pr["httpGet"].get("httpHeaders"):
                    out.append(f"{where} {probe}: GET {path} needs the API key (vLLM guards {auth_prefix}*)")
                pp = pr["httpGet"].get("port")
                if cports.get(pp, pp) != port:
                    out.append(f"{where} {probe}: port {pp} is not vLLM's {port}")
            elif "exec" in pr:
                text = " ".join(pr["exec"].get("command") or [])
                urls = _URL.findall(text)
                if not urls:
                    out.append(f"{where} {probe}: an exec probe that calls no URL")
                for host, p, path in urls:
                    why = _route_ok(table, "GET", path, env, args)
                    if why:
                        out.append(f"{where} {probe}: {why}")
                    if int(p) != port or host not in ("127.0.0.1", "localhost"):
                        out.append(f"{where} {probe}: calls {host}:{p}, vLLM listens on 127.0.0.1:{port}")
                    if keyed and path.startswith(auth_prefix) and "VLLM_API_KEY" not in text:
                        out.append(f"{where} {probe}: {path} needs the API key")
        if probe_budget := c.get("startupProbe"):
            s = v["serving"]["startupProbe"]
            if (probe_budget.get("periodSeconds"), probe_budget.get("failureThreshold")) != (s["periodSeconds"], s["failureThreshold"]):
                out.append(f"{where}: startup budget is not serving.startupProbe")
        for svc, (sp, tp) in svc_port.items():
            if sp != v["serving"]["service"]["port"]:
                out.append(f"Service/{svc}: port {sp}, serving.service.port is {v['serving']['service']['port']}")
            if cports.get(tp, tp) != port:
                out.append(f"Service/{svc}: targetPort {tp} is not vLLM's port {port}")
    for pod in r.of("Pod"):
        for c in pod["spec"]["containers"]:
            script = "\n".join(str(a) for a in (c.get("command") or []) + (c.get("args") or [])).replace("\\\n", " ")
            env = {}
            for m in re.finditer(r'^\s*(\w+)="([^"]*)"', script, re.M):
                env[m.group(1)] = m.group(2)
            expanded = re.sub(r"\$\{?(\w+)\}?", lambda m, env=env: env.get(m.group(1), m.group(0)), script)
            calls = [ln for ln in expanded.splitlines() if re.search(r"\bcurl\b", ln)]
            if not calls:
                out.append(f"Pod/{pod['metadata']['name']}: the helm test calls nothing")
            for ln in calls:
                method = "POST" if re.search(r"\s-d\s|--data", ln) else "GET"
                for host, p, path in _URL.findall(ln):
                    if host not in svc_port:
                        out.append(f"helm test calls {host}, not the Service {sorted(svc_port)}")
                    elif int(p) != svc_port[host][0]:
                        out.append(f"helm test calls port {p}, the Service listens on {svc_port[host][0]}")
                    dep = r.of("Deployment")
                    denv = {e.get("name") for d in dep for e in pod_spec(d)["containers"][0].get("env") or []}
                    dargs = {k for d in dep for k in flags(pod_spec(d)["containers"][0].get("args", [])[1:])}
                    why = _route_ok(table, method, path, denv, dargs)
                    if why:
                        out.append(f"helm test: {why}")
                    if keyed and path.startswith(auth_prefix) and "-H @/tmp/headers" not in ln and "Authorization" not in ln:
                        out.append(f"helm test: {method} {path} needs the API key")
            if keyed and not any(e.get("name") == "VLLM_API_KEY" for e in c.get("env") or []):
                out.append("helm test: serving.apiKey is set but the test pod has no VLLM_API_KEY")
    return out


def served_model(r: Render) -> list[str]:
    """Clients (and the helm test) ask for the name vLLM serves: --served-model-name,
    or with LoRA the adapter's name in --lora-modules; serving.servedModelName
    when set, else the served directory's name."""
    out, v = [], r.values
    s = v["serving"]
    model, adapter = model_source(v, s["model"], bool(s["lora"]))
    merged = model_source(v, s["model"], False)[0]
    want = s["servedModelName"] or merged.rsplit("/", 1)[-1]
    for d in r.of("Deployment"):
        f = flags(pod_spec(d)["containers"][0].get("args", [])[1:])
        names = [str(f.get("lora-modules", "")).split("=", 1)[0]] if s["lora"] else [f.get("served-model-name")]
        if "served-model-name" in s["extraArgs"] or "lora-modules" in s["extraArgs"]:
            continue
        if want not in names:
            out.append(f"Deployment: serves {names}, clients ask for {want!r}")
        for pod in r.of("Pod"):
            script = json.dumps(pod["spec"]["containers"][0].get("args"))
            if f'\\"id\\":\\"{want}\\"' not in script and f'"id":"{want}"' not in script:
                out.append(f"helm test does not check for model {want!r}")
    return out
