"""Strategies of scalars and free-form values: strings YAML reads as other types, characters
that break YAML or Go templates, JSON scalars, small free-form objects, and the strings,
integers and numbers a schema node allows; KNOWN_KEYS, the names the chart itself uses as
keys of its free maps (collisions)."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from .oracle import _go_re

# Strings YAML (1.1, PyYAML or go-yaml) reads as something else when unquoted, and
# characters that break YAML or Go templates when pasted raw.
TRICKY = (
    "true",
    "false",
    "null",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Y",
    "N",
    "~",
    "0",
    "1",
    "007",
    "08",
    "1e3",
    "1e+06",
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    ".nan",
    "12:30",
    "2001-01-01",
    "-",
    "*a",
    "&a",
    "!a",
    "#a",
    "a #b",
    "'a",
    '"a',
    "a: b",
    "a:",
    "- a",
    "{a}",
    "[a]",
    "|",
    ">",
    "%a",
    "@a",
    "`a",
    " a",
    "a ",
    "a b",
    "a\nb",
    "a\tb",
    "\\",
    "{{ x }}",
    "é",
    "中文",
    "a,b=c",
    "",
)
_SPECIAL = list(" :#{}[],&*!|>'\"%@`-?\n\t\\=/.")
CHARS = st.one_of(
    st.sampled_from(_SPECIAL), st.characters(codec="utf-8", exclude_categories=("Cs", "Cn", "Co")), st.sampled_from("abcxyz019")
)
DNS_LABEL = st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
NAMES = st.one_of(st.sampled_from(("team", "hf-token", "cache", "y", "true", "null", "1")), DNS_LABEL)

# Keys of free maps: names the chart itself uses (collisions), YAML-tricky ones, then anything
# the key's pattern allows.
KNOWN_KEYS = {
    ("training", "extraArgs"): (
        "model_name_or_path",
        "stage",
        "do_train",
        "finetuning_type",
        "deepspeed",
        "dataset",
        "template",
        "cutoff_len",
        "output_dir",
        "lora_rank",
        "lora_alpha",
        "lora_target",
        "quantization_bit",
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "val_size",
        "eval_steps",
        "max_samples",
        "trust_remote_code",
        "neat_packing",
        "packing",
        "y",
        "null",
        "true",
    ),
    ("common", "extraEnv"): (
        "HF_HOME",
        "HF_TOKEN",
        "HF_ENDPOINT",
        "HOME",
        "VLLM_API_KEY",
        "USE_MODELSCOPE_HUB",
        "HF_HUB_OFFLINE",
        "MY_TOKEN",
        "DB_PASSWORD",
        "API_KEY",
        "PATH",
        "y",
        "Y",
        "n",
        "true",
        "null",
        "NULL",
        "on",
        "off",
        "yes",
        "No",
        "_",
    ),
    ("common", "extraVolumes"): (
        "workspace",
        "tmp",
        "dshm",
        "config",
        "cache",
        "y",
        "n",
        "true",
        "null",
        "on",
        "1",
        "123",
        "1e3",
        "08",
        "0x1f",
    ),
    ("datasets",): ("identity", "alpaca_gpt4_en", "dpo_mix_en", "team", "y", "true", "null", "1", "1e3", "a.b"),
    ("serving", "extraArgs"): (
        "max-lora-rank",
        "max-model-len",
        "tensor-parallel-size",
        "port",
        "served-model-name",
        "enable-lora",
        "enforce-eager",
        "dtype",
        "lora-modules",
        "max-loras",
        "gpu-memory-utilization",
        "no-enable-prefix-caching",
        "y",
        "true",
    ),
    ("eval", "extraArgs"): (
        "limit",
        "tasks",
        "model",
        "model_args",
        "batch_size",
        "output_path",
        "log_samples",
        "num_fewshot",
        "device",
        "y",
    ),
    ("training", "deepspeed", "extraConfig"): (
        "zero_optimization",
        "bf16",
        "fp16",
        "train_batch_size",
        "gradient_clipping",
        "train_micro_batch_size_per_gpu",
        "steps_per_print",
        "stage",
        "wall_clock_breakdown",
    ),
}
for _stage in ("sft", "dpo", "merge"):
    KNOWN_KEYS[(_stage, "extraArgs")] = KNOWN_KEYS[("training", "extraArgs")] + (
        "export_dir",
        "export_size",
        "export_device",
        "adapter_name_or_path",
    )
KNOWN_KEYS[("common", "podLabels")] = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "helm.sh/chart",
    "team",
    "y",
    "true",
)
KNOWN_KEYS[("common", "podAnnotations")] = ("helm.sh/hook", "team", "y")
KNOWN_KEYS[("storage", "annotations")] = ("helm.sh/resource-policy", "team", "y")
KNOWN_KEYS[("common", "nodeSelector")] = ("kubernetes.io/arch", "nvidia.com/gpu.product", "y", "true")


def text(min_size: int = 0, max_size: int | None = 16) -> st.SearchStrategy[str]:
    hi = 16 if max_size is None else min(max_size, 16)
    ok = lambda s: min_size <= len(s) <= (max_size if max_size is not None else 10**9)  # noqa: E731
    return st.one_of(st.sampled_from(TRICKY).filter(ok), st.text(CHARS, min_size=min_size, max_size=max(hi, min_size)).filter(ok))


def json_scalars(null: bool = True) -> st.SearchStrategy:
    return st.one_of(
        *([st.none()] if null else []),
        st.booleans(),
        st.integers(-(10**7), 10**7),
        st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False),
        text(max_size=12),
    )


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
    floats = st.floats(
        -1e9 if lo is None else lo, 1e9 if hi is None else hi, exclude_min=xlo, exclude_max=xhi, allow_nan=False, allow_infinity=False
    )
    ilo, ihi = _int_bounds(node)
    ints = st.integers(max(ilo, -(10**9)), min(ihi, 10**9))
    return st.one_of(ints, floats) if max(ilo, -(10**9)) <= min(ihi, 10**9) else floats
