#!/usr/bin/env python3
"""Write tests/peer/vllm_flags.json: the flags of `vllm serve`, read from vLLM's
own argument parser, so that tests can check the command lines the chart
renders (flag names, types, choices) without vLLM.

Run it inside an environment where vLLM imports; scripts/vllm_flags_env.sh
builds one (a throwaway venv with pinned versions) and runs this script:

    bash scripts/vllm_flags_env.sh             # regenerate the table
    bash scripts/vllm_flags_env.sh --check     # exit 1 if the table is stale

The parser is the real one: `ServeSubcommand().subparser_init(subparsers)`, as
`vllm/entrypoints/cli/main.py` builds it for `vllm serve`; it calls
`make_arg_parser()` from `vllm/entrypoints/openai/cli_args.py`. No vLLM code is
stubbed. Two settings make it build on a CPU-only machine, before vLLM is used:

* The current platform is set to vLLM's own CpuPlatform. The PyPI wheel is a
  CUDA build: on a machine without a GPU its platform detection finds nothing
  (the CUDA check needs NVML and a GPU; the CPU check only fires for a "+cpu"
  build or macOS), leaves `UnspecifiedPlatform` (device_type ""), and
  `DeviceConfig()` then raises "Failed to infer device type" while the parser
  computes the defaults of VllmConfig. The platform only changes defaults
  (which this table does not record); the CPU and CUDA platforms do not
  override `pre_register_and_update`, the one hook that may edit the parser.
  The env var VLLM_TARGET_DEVICE=cpu does not help: only setup.py reads it.
* VLLM_PLUGINS is set to "" so that no installed vLLM plugin (general or
  platform) can add flags or choices; the table is vLLM's alone.

`vllm._C` (the CUDA kernels, linked against libcudart and torch 2.8) fails to
load here; vLLM itself catches that ImportError (vllm/_custom_ops.py logs a
warning), and no parser code calls a kernel, so nothing needs a stub.

The table records per flag (keyed by its first long option string):
  type        int, float, str, bool, human_readable_int ("8k", "1M", ...),
              json (any JSON value), json_object (a config dataclass given
              as a JSON object), json_or_str (a JSON object, or else a plain
              string), or
              "callable:<module>.<name>" for anything else; null for --help.
  nullable    the value may be "" or "None" (vLLM's optional_type).
  choices     the allowed values after conversion by `type`, or null.
  nargs       argparse nargs (null: exactly one value; 0: takes none).
  takes_value whether the flag accepts a value at all.
  action      store, store_true, store_false, boolean_optional (--x/--no-x),
              append, help, or the class name of a custom action.
  aliases     the other option strings of the same flag (-tp, --no-x, ...).
  deprecated  vLLM marks the flag deprecated.
Defaults and help texts are left out: they depend on the platform. Beside
"flags" the file records vllm_version, generated_by (the command that
regenerates it), generator (the versions it ran with), parser and positionals.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "peer" / "vllm_flags.json"
ENV_SCRIPT = "bash scripts/vllm_flags_env.sh"


def build_serve_parser() -> argparse.ArgumentParser:
    """The `vllm serve` sub-parser, built as `vllm` builds it."""
    os.environ["VLLM_PLUGINS"] = ""  # no plugins: see the module docstring

    import vllm.platforms
    from vllm.platforms.cpu import CpuPlatform

    # Must happen before anything reads vllm.platforms.current_platform.
    if vllm.platforms._current_platform is not None:
        raise RuntimeError("vLLM resolved its platform before the override")
    vllm.platforms._current_platform = CpuPlatform()

    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils import FlexibleArgumentParser

    top = FlexibleArgumentParser(description="vLLM CLI")
    subparsers = top.add_subparsers(required=False, dest="subparser")
    return ServeSubcommand().subparser_init(subparsers)


def _closure(fn) -> dict:
    cells = getattr(fn, "__closure__", None) or ()
    return dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in cells)))


def describe_type(fn) -> tuple[str | None, bool]:
    """(type name, nullable) of an argparse `type` callable of vLLM."""
    import vllm.engine.arg_utils as au

    if fn is None:
        return "str", False  # argparse passes the string through
    if fn in (int, float, str, bool):
        return fn.__name__, False
    if fn is au.human_readable_int:
        return "human_readable_int", False
    if fn is au.union_dict_and_str:
        return "json_or_str", False
    if fn is json.loads:
        return "json", False
    qual = getattr(fn, "__qualname__", "")
    if qual == "optional_type.<locals>._optional_type":
        name, _ = describe_type(_closure(fn)["return_type"])
        return name, True
    if qual == "parse_type.<locals>._parse_type":
        return describe_type(_closure(fn)["return_type"])
    if qual == "_compute_kwargs.<locals>.parse_dataclass":
        return "json_object", False  # TypeAdapter(<config dataclass>).validate_json
    return f"callable:{getattr(fn, '__module__', '?')}.{qual or repr(fn)}", False


def describe_action(action: argparse.Action) -> str:
    kinds = {
        argparse._StoreAction: "store",
        argparse._StoreTrueAction: "store_true",
        argparse._StoreFalseAction: "store_false",
        argparse._StoreConstAction: "store_const",
        argparse._AppendAction: "append",
        argparse._CountAction: "count",
        argparse._HelpAction: "help",
        argparse._VersionAction: "version",
        argparse.BooleanOptionalAction: "boolean_optional",
    }
    return kinds.get(type(action), type(action).__name__)


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def build_table(parser: argparse.ArgumentParser, command: str) -> dict:
    import vllm
    from vllm.utils import FlexibleArgumentParser

    deprecated = {id(a) for a in FlexibleArgumentParser._deprecated}
    flags: dict[str, dict] = {}
    positionals = []
    for action in parser._actions:
        kind = describe_action(action)
        if kind == "boolean_optional" or action.nargs == 0:
            type_name, nullable = ("bool" if kind != "help" else None), False
        else:
            type_name, nullable = describe_type(action.type)
        entry = {
            "type": type_name,
            "nullable": nullable,
            "choices": None if action.choices is None else [_jsonable(c) for c in action.choices],
            "nargs": action.nargs,
            "takes_value": action.nargs != 0,
            "action": kind,
            "deprecated": id(action) in deprecated,
        }
        if not action.option_strings:
            positionals.append({"dest": action.dest, **entry})
            continue
        longs = [o for o in action.option_strings if o.startswith("--")]
        name = longs[0] if longs else action.option_strings[0]
        if name in flags:
            raise RuntimeError(f"two actions claim {name}")
        entry["aliases"] = [o for o in action.option_strings if o != name]
        flags[name] = entry
    import torch

    return {
        "vllm_version": vllm.__version__,
        "generated_by": command,
        "generator": f"scripts/vllm_flags.py in a throwaway venv: vllm=={vllm.__version__},"
        f" torch=={torch.__version__}, Python {sys.version_info.major}.{sys.version_info.minor}",
        "parser": "vllm.entrypoints.cli.serve.ServeSubcommand().subparser_init() with vllm.platforms.cpu.CpuPlatform and VLLM_PLUGINS=''",
        "positionals": positionals,
        "flags": flags,
    }


def render(table: dict) -> str:
    return json.dumps(table, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed table; exit 1 if it differs")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUT, help="where the table lives")
    args = ap.parse_args(argv)

    # The command that writes this table (the env script runs this script with
    # the same arguments), the same for --check and on every machine.
    command = ENV_SCRIPT
    if args.output.resolve() != DEFAULT_OUT:
        command += f" --output {args.output}"
    text = render(build_table(build_serve_parser(), command))

    if args.check:
        try:
            old = args.output.read_text()
        except FileNotFoundError:
            print(f"{args.output}: missing; run: {ENV_SCRIPT}", file=sys.stderr)
            return 1
        if old == text:
            print(f"{args.output}: up to date ({len(json.loads(text)['flags'])} flags)")
            return 0
        diff = difflib.unified_diff(old.splitlines(), text.splitlines(), "committed", "regenerated", lineterm="")
        print("\n".join(list(diff)[:200]), file=sys.stderr)
        print(f"{args.output}: stale; run: {ENV_SCRIPT}", file=sys.stderr)
        return 1

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}: vLLM {json.loads(text)['vllm_version']}, {len(json.loads(text)['flags'])} flags")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
