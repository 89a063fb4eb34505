"""The chart's invariants: plain functions over the objects of one render and
the values that produced them (or over a pair of renders), each returning a
list of problems ([] when it holds). Three drivers run the same functions:

  * tests/test_invariants.py         every preset x stage, and the pairs of
                                     presets x methods x stages x releases;
  * tests/test_values_surface.py     every leaf of values.yaml changed;
  * tests/test_fuzz_values.py        every schema-valid Hypothesis example
                                     (harness.fuzz.check).

Each invariant states what a reviewer would check by hand, computed from the
values independently of the chart's helpers (the path plan in `paths` is the
contract of llama-factory.paths, written out again), so that a template that
drifts from the values is caught whatever the values are.

    problems = invariants.check(Render(objects, values))   # {name: [message]}

One namespace (`from harness import invariants`), modules by concern: `values` (Helm's
merge, Render), `reading` (configs and workloads of a render), `paths` (the path plan, path
chain, pipeline order), `gpu` (GPU arithmetic, launcher), `wiring` (ConfigMaps and volumes),
`apiserver` (rules JSON Schema cannot express), `secret_refs` (secrets only by reference),
`vllm` (routes, served model), `scheduling` (identity labels, placement, images), `pairs`
(upgrade rule, shared PVC).
"""

from __future__ import annotations

from chartkit.pipeline import pod_templates

from .apiserver import (
    CONFIGMAP_KEY,
    DNS1035_LABEL,
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    ENV_VAR_NAME,
    IANA_SVC_NAME,
    LABEL_VALUE,
    NAME_RULES,
    QUALIFIED_NAME,
    api_server,
    apiserver_rules,
    data_key_ok,
    qualified_name_problems,
)
from .gpu import LORA_RANKS, gpu_arithmetic, launcher_command
from .pairs import identity_fields, io_of, job_compute, job_content, lineage, shared_pvc, upgrade_rule
from .paths import absolute, expected_io, model_source, path_chain, pipeline_order, plan, rendered_io, stages_of
from .reading import BATCH, CONFIG_PATH, config_file, configmaps, flags, mounted_config, stage_objects, workload
from .scheduling import BLOCKS, DEFAULT_IMAGE, expected_image, identity, placement, pod_block, stage_setting
from .secret_refs import SECRET_NAME, SECRET_VALUE, secret_flow
from .values import DEFAULTS_FILE, Render, coalesce, merge_maps, values_of
from .vllm import ROUTES, _route_ok, route_table, served_model, vllm_routes
from .wiring import configmap_wiring, volume_wiring

PER_RENDER = {
    f.__name__: f
    for f in (
        path_chain,
        gpu_arithmetic,
        launcher_command,
        configmap_wiring,
        volume_wiring,
        api_server,
        secret_flow,
        vllm_routes,
        served_model,
        identity,
        pipeline_order,
        placement,
    )
}


def check(r: Render, only=None) -> dict[str, list[str]]:
    """{invariant: problems} of every invariant that does not hold (an
    invariant that crashes on the render is a problem too)."""
    found = {}
    for name, f in PER_RENDER.items():
        if only and name not in only:
            continue
        try:
            problems = f(r)
        except Exception as e:  # noqa: BLE001 - a malformed render is a finding, not a harness crash
            problems = [f"could not check: {type(e).__name__}: {e}"]
        if problems:
            found[name] = problems
    return found


__all__ = [
    "DEFAULTS_FILE",
    "merge_maps",
    "coalesce",
    "values_of",
    "Render",
    "CONFIG_PATH",
    "BATCH",
    "flags",
    "configmaps",
    "mounted_config",
    "config_file",
    "stage_objects",
    "workload",
    "plan",
    "absolute",
    "model_source",
    "expected_io",
    "rendered_io",
    "stages_of",
    "path_chain",
    "pipeline_order",
    "LORA_RANKS",
    "gpu_arithmetic",
    "launcher_command",
    "configmap_wiring",
    "volume_wiring",
    "DNS1123_LABEL",
    "DNS1123_SUBDOMAIN",
    "DNS1035_LABEL",
    "QUALIFIED_NAME",
    "LABEL_VALUE",
    "IANA_SVC_NAME",
    "ENV_VAR_NAME",
    "CONFIGMAP_KEY",
    "NAME_RULES",
    "qualified_name_problems",
    "data_key_ok",
    "apiserver_rules",
    "api_server",
    "SECRET_NAME",
    "SECRET_VALUE",
    "secret_flow",
    "ROUTES",
    "route_table",
    "_route_ok",
    "vllm_routes",
    "served_model",
    "identity",
    "BLOCKS",
    "DEFAULT_IMAGE",
    "pod_block",
    "stage_setting",
    "expected_image",
    "placement",
    "job_content",
    "job_compute",
    "upgrade_rule",
    "io_of",
    "lineage",
    "shared_pvc",
    "identity_fields",
    "pod_templates",
    "PER_RENDER",
    "check",
]
