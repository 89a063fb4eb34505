#!/usr/bin/env python3
"""Write tests/peer/vllm_routes.json: the HTTP routes of `vllm serve` (the
OpenAI-compatible server) of the pinned vLLM version, read from vLLM's own
source, so that tests can check every URL the chart's probes and `helm test`
call (harness.invariants.vllm_routes) without vLLM.

    python scripts/vllm_routes.py            # write the table
    python scripts/vllm_routes.py --check    # exit 1 if it is stale

How the table is read. scripts/vllm_flags.py builds vLLM's argument parser by
importing vLLM; the route table cannot be made that way here: the routes are
registered when vllm/entrypoints/openai/api_server.py is imported, which
imports torch and the engine, and this machine's package index has no CPU
build of torch at the pin scripts/vllm_flags_env.sh names (only the CUDA
wheels, whose libraries are not installable without a GPU stack). So the
script reads the routes from the source of the released wheel itself: it
downloads vllm==<pin> with `pip download --no-deps` (the same wheel the
image's vLLM comes from; cached in VLLM_ROUTES_CACHE, default
/tmp/vllm-wheel) and walks the syntax tree of the server module (Python's
ast, no vLLM code is run or copied):

  * `@router.<method>(path)` / `@router.api_route(path, methods=…)` and
    `@app.<method>(path)` decorators; FastAPI's router.get/post/… are the one
    way api_server.py registers a route, and build_app() includes `router`;
  * the condition a route is registered under: a module-level
    `if envs.VLLM_X:` (an environment variable) or a helper called only when
    `args.<flag>` is set (`getattr(args, 'flag', False)`);
  * Mount(path, …) inside mount_metrics() (a prefix route, e.g. /metrics);
  * the path prefix AuthenticationMiddleware guards when an API key is set
    (`url_path.startswith("/v1")`).

The table records vllm_version (= images.vllm.tag), the wheel's file name and
sha256, routes [{path, methods, condition, prefix}] and auth {prefix}.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "peer" / "vllm_routes.json"
MODULE = "vllm/entrypoints/openai/api_server.py"
CACHE = Path(os.environ.get("VLLM_ROUTES_CACHE", "/tmp/vllm-wheel"))
HTTP = {"get": "GET", "post": "POST", "put": "PUT", "delete": "DELETE", "patch": "PATCH", "head": "HEAD", "options": "OPTIONS"}


def pinned_version() -> str:
    tag = yaml.safe_load((ROOT / "values.yaml").read_text())["images"]["vllm"]["tag"]
    return tag.removeprefix("v")


def wheel(version: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"vllm-{version}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", f"vllm=={version}", "-d", str(CACHE)],
            check=True,
        )
        found = sorted(CACHE.glob(f"vllm-{version}-*.whl"))
    return found[0]


def _const_str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _condition(test: ast.expr) -> dict | None:
    """`envs.VLLM_X` -> {"env": "VLLM_X"}; anything else is recorded as source text."""
    if isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "envs":
        return {"env": test.attr}
    return {"source": ast.unparse(test)}


def _flag_condition(fn: ast.FunctionDef) -> dict | None:
    """A helper that registers routes only when `getattr(args, 'x', …)` holds."""
    for node in ast.walk(fn):
        if isinstance(node, ast.If):
            t = node.test
            if (
                isinstance(t, ast.Call)
                and isinstance(t.func, ast.Name)
                and t.func.id == "getattr"
                and len(t.args) >= 2
                and _const_str(t.args[1])
            ):
                return {"flag": t.args[1].value.replace("_", "-")}
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "args":
                return {"flag": t.attr.replace("_", "-")}
    return {"source": f"{fn.name}()"}


def routes_of(source: str) -> tuple[list[dict], dict]:
    tree = ast.parse(source)
    routes: list[dict] = []
    auth: dict = {}

    def decorated(fn, condition):
        for d in fn.decorator_list:
            if not (
                isinstance(d, ast.Call)
                and isinstance(d.func, ast.Attribute)
                and isinstance(d.func.value, ast.Name)
                and d.func.value.id in ("router", "app")
            ):
                continue
            attr, path = d.func.attr, _const_str(d.args[0]) if d.args else None
            if path is None:
                continue
            if attr in HTTP:
                methods = [HTTP[attr]]
            elif attr == "api_route":
                kw = {k.arg: k.value for k in d.keywords}
                methods = [m.value for m in kw["methods"].elts] if "methods" in kw else ["GET"]
            else:
                continue
            routes.append({"path": path, "methods": methods, "condition": condition, "prefix": False, "handler": fn.name})

    def visit(body, condition):
        nonlocal auth
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decorated(node, condition)
                inner = _flag_condition(node) if condition is None else condition
                for sub in ast.walk(node):
                    if sub is not node and isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        decorated(sub, inner)
                if node.name == "mount_metrics":
                    for sub in ast.walk(node):
                        if (
                            isinstance(sub, ast.Call)
                            and isinstance(sub.func, ast.Name)
                            and sub.func.id == "Mount"
                            and sub.args
                            and _const_str(sub.args[0])
                        ):
                            routes.append(
                                {
                                    "path": sub.args[0].value,
                                    "methods": list(HTTP.values()),
                                    "condition": None,
                                    "prefix": True,
                                    "handler": "mount_metrics",
                                }
                            )
            elif isinstance(node, ast.If):
                visit(node.body, _condition(node.test))
            elif isinstance(node, ast.ClassDef) and node.name == "AuthenticationMiddleware":
                for sub in ast.walk(node):
                    if (
                        isinstance(sub, ast.Call)
                        and isinstance(sub.func, ast.Attribute)
                        and sub.func.attr == "startswith"
                        and sub.args
                        and _const_str(sub.args[0])
                    ):
                        auth = {"prefix": sub.args[0].value, "middleware": node.name}

    visit(tree.body, None)
    # build_app() must include the module's router, else none of these routes is served.
    if not re.search(r"app\.include_router\(router\)", source):
        raise SystemExit(f"{MODULE}: build_app no longer includes `router`; update this script")
    if not auth:
        raise SystemExit(f"{MODULE}: AuthenticationMiddleware's guarded prefix not found; update this script")
    merged: dict[tuple, dict] = {}
    for r in routes:
        key = (r["path"], json.dumps(r["condition"], sort_keys=True), r["prefix"])
        if key in merged:
            merged[key]["methods"] = sorted(set(merged[key]["methods"]) | set(r["methods"]))
        else:
            merged[key] = {**r, "methods": sorted(r["methods"])}
    return sorted(merged.values(), key=lambda r: (r["path"], r["methods"])), auth


def table() -> dict:
    version = pinned_version()
    whl = wheel(version)
    with zipfile.ZipFile(whl) as z:
        source = z.read(MODULE).decode()
    routes, auth = routes_of(source)
    return {
        "vllm_version": version,
        "generated_by": "python scripts/vllm_routes.py",
        "source": {"wheel": whl.name, "sha256": hashlib.sha256(whl.read_bytes()).hexdigest(), "module": MODULE},
        "auth": auth,
        "routes": routes,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 when the committed table differs")
    args = ap.parse_args(argv)
    text = json.dumps(table(), indent=1) + "\n"
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"stale: {OUT.relative_to(ROOT)}; run: python scripts/vllm_routes.py")
            return 1
        print(f"current: {OUT.relative_to(ROOT)}")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(json.loads(text)['routes'])} routes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
