"""Check a rendered `vllm serve` argument list against the flag table read from
vLLM's own parser (tests/peer/vllm_flags.json, made by scripts/vllm_flags.py).

    errors = check_args(container["args"], load_table())

The list is what the chart renders: the model path first, then `--flag=value`
or a bare `--flag`. It mirrors what argparse and vLLM's FlexibleArgumentParser
would do with it (type conversion, choices, vLLM's `--x` / `--no-x` booleans,
underscores read as dashes, `--json-flag.key=value`), with two deliberate
differences: an abbreviated flag (`--tensor-parallel=2`, which argparse
would expand) is an error, and so is a flag given twice.
Checks after parsing (e.g. LoRAConfig's allowed ranks) are not in the table.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from chartkit.chart import ROOT

TABLE = ROOT / "tests" / "peer" / "vllm_flags.json"


def load_table(path: Path = TABLE) -> dict:
    return json.loads(Path(path).read_text())


def _human_readable_int(value: str) -> int:
    """vllm.engine.arg_utils.human_readable_int: '8192', '8k', '25.6k', '1K'."""
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", value)
    if match:
        number, suffix = match.groups()
        if suffix in "kmg":
            return int(float(number) * {"k": 10**3, "m": 10**6, "g": 10**9}[suffix])
        if suffix in "KMG":
            return int(number) * {"K": 2**10, "M": 2**20, "G": 2**30}[suffix]
    return int(value)


def _json_or_str(value: str):
    """vllm.engine.arg_utils.union_dict_and_str: JSON when it looks like an object."""
    return json.loads(value) if re.match(r"(?s)^\s*{.*}\s*$", value) else value


def _json_object(value: str) -> dict:
    """A config dataclass given as JSON (its keys are not checked here)."""
    if not isinstance(parsed := json.loads(value), dict):
        raise ValueError("not a JSON object")
    return parsed


CONVERT = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,  # argparse type=bool: any string is accepted
    "human_readable_int": _human_readable_int,
    "json": json.loads,
    "json_object": _json_object,
    "json_or_str": _json_or_str,
}


def _lora_module(value: str) -> None:
    """vllm.entrypoints.openai.cli_args.LoRAParserAction: name=path or JSON."""
    if value in ("", "None"):
        return
    if "=" in value and "," not in value:
        if value.count("=") != 1:
            raise ValueError("expected name=path with one '='")
        return
    module = json.loads(value)
    if not isinstance(module, dict) or not {"name", "path"} <= module.keys() or not module.keys() <= {"name", "path", "base_model_name"}:
        raise ValueError('expected {"name": ..., "path": ..., "base_model_name": ...}')


def _check_value(flag: str, spec: dict, value: str) -> str | None:
    """An error for `value` of `flag`, or None."""
    if spec["action"] == "LoRAParserAction":
        try:
            _lora_module(value)
        except ValueError as e:
            return f"{flag}={value}: {e}"
        return None
    if spec["nullable"] and value in ("", "None"):
        converted = None
    else:
        convert = CONVERT.get(spec["type"])
        if convert is None:  # "callable:...": not checkable offline
            return None
        try:
            converted = convert(value)
        except ValueError:
            return f"{flag}={value}: not a valid {spec['type']}"
    if spec["choices"] is not None and converted not in spec["choices"]:
        return f"{flag}={value}: invalid choice; choose from {', '.join(map(str, spec['choices']))}"
    return None


def check_args(args: list[str], table: dict, allow_deprecated: bool = True) -> list[str]:
    """Errors in a `vllm serve` argument list (model path first); [] if valid."""
    flags = table["flags"]
    version = table.get("vllm_version", "?")
    index = {alias: name for name, spec in flags.items() for alias in (name, *spec["aliases"])}

    if not args or args[0].startswith("-"):
        return ["the first argument must be the model path"]
    errors: list[str] = []
    seen: dict[str, str] = {}
    for arg in args[1:]:
        if not arg.startswith("-"):
            errors.append(f"{arg!r}: a value without a flag; expected --flag=value")
            continue
        if arg.startswith("-O") and arg != "-O" and arg[2] != ".":  # vLLM: -O3, -O=3 mean -O.level=3
            arg = "-O.level=" + arg[3:] if arg[2] == "=" else "-O.level=" + arg[2:]
        option, has_value, value = arg.partition("=")
        if option.startswith("--"):  # FlexibleArgumentParser: '_' before the first '.' reads as '-'
            head, dot, rest = option.partition(".")
            option = head.replace("_", "-") + dot + rest
        option, dot, key = option.partition(".")
        if option not in index:
            close = difflib.get_close_matches(option, index, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            errors.append(f"{option}: unknown flag of vLLM {version}{hint}")
            continue
        name = index[option]
        spec = flags[name]
        if name in seen and not dot:
            errors.append(f"{option}: given twice (also as {seen[name]})")
        seen.setdefault(name, option)
        if spec["deprecated"] and not allow_deprecated:
            errors.append(f"{option}: deprecated in vLLM {version}")
        if dot:  # --json-flag.key=value: vLLM nests it into the flag's JSON
            if not key or spec["type"] not in ("json", "json_object", "json_or_str"):
                errors.append(f"{option}.{key}: {name} takes no JSON keys")
            elif not has_value:
                errors.append(f"{option}.{key}: needs a value (--{name[2:]}.{key}=value)")
            continue
        if not spec["takes_value"]:
            if has_value:
                how = f"{name} or {spec['aliases'][0]}" if spec["action"] == "boolean_optional" else name
                errors.append(f"{arg}: {option} takes no value; write {how}")
            continue
        if not has_value:
            if spec["nargs"] not in ("?", "*"):
                errors.append(f"{option}: needs a value ({option}=...)")
            continue
        if isinstance(spec["nargs"], int) and spec["nargs"] > 1:
            errors.append(f"{arg}: {option} takes {spec['nargs']} values; --flag=value gives one")
            continue
        error = _check_value(option, spec, value)
        if error:
            errors.append(error)
    return errors
