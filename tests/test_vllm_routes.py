"""The vLLM route table (tests/peer/vllm_routes.json, read by
scripts/vllm_routes.py from the released wheel of the pinned vLLM) is the one
of the image the chart runs, and the reader finds what vLLM's server module
registers; the probes and helm-test URLs are checked against it by
harness.invariants.vllm_routes (tests/test_invariants.py)."""

import sys

import yaml

from chartkit.chart import ROOT
from harness import invariants as inv

sys.path.insert(0, str(ROOT / "scripts"))
import vllm_routes  # noqa: E402

TABLE = inv.route_table()


def test_table_is_of_the_pinned_vllm():
    tag = yaml.safe_load((ROOT / "values.yaml").read_text())["images"]["vllm"]["tag"]
    assert TABLE["vllm_version"] == tag.removeprefix("v")
    assert TABLE["source"]["wheel"].startswith(f"vllm-{TABLE['vllm_version']}-")


def test_table_has_the_routes_the_chart_calls_and_the_auth_prefix():
    paths = {(r["path"], m) for r in TABLE["routes"] for m in r["methods"] if not r["condition"]}
    assert {("/health", "GET"), ("/v1/models", "GET"), ("/v1/completions", "POST")} <= paths
    assert ("/v1/completions", "GET") not in paths
    assert TABLE["auth"]["prefix"] == "/v1"


SOURCE = """
router = APIRouter()

@router.get("/health")
async def health(): ...

@router.api_route("/both", methods=["GET", "POST"])
async def both(): ...

def maybe_register(args):
    if getattr(args, "enable_thing", False):
        @router.get("/thing")
        async def thing(): ...

if envs.VLLM_DEV:
    @router.post("/dev")
    async def dev(): ...

def mount_metrics(app):
    app.routes.append(Mount("/metrics", make_asgi_app()))

class AuthenticationMiddleware:
    def __call__(self, scope):
        if url_path.startswith("/v9"):
            pass

def build_app(args):
    app.include_router(router)
"""


def test_reader_finds_routes_conditions_mounts_and_auth():
    routes, auth = vllm_routes.routes_of(SOURCE)
    got = {(r["path"], tuple(r["methods"]), str(r["condition"]), r["prefix"]) for r in routes}
    assert ("/health", ("GET",), "None", False) in got
    assert ("/both", ("GET", "POST"), "None", False) in got
    assert ("/thing", ("GET",), "{'flag': 'enable-thing'}", False) in got
    assert ("/dev", ("POST",), "{'env': 'VLLM_DEV'}", False) in got
    assert any(p == "/metrics" and prefix for p, _, _, prefix in got)
    assert auth["prefix"] == "/v9"


def test_route_check_reads_conditions():
    table = {
        "vllm_version": "x",
        "routes": [{"path": "/dev", "methods": ["POST"], "condition": {"env": "VLLM_DEV"}, "prefix": False}],
        "auth": {"prefix": "/v1"},
    }
    assert inv._route_ok(table, "POST", "/dev", {"VLLM_DEV"}, set()) is None
    assert "VLLM_DEV" in inv._route_ok(table, "POST", "/dev", set(), set())
    assert "serves no GET" in inv._route_ok(table, "GET", "/dev", {"VLLM_DEV"}, set())
