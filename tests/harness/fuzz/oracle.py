"""The oracle: what Helm makes of an example's values (chart defaults, preset and --set-json,
merged as Helm merges them) validated with jsonschema, `$` read as Go's end of text; the
--set-json text of a value; and navigation of values.schema.json."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import TYPE_CHECKING

import jsonschema

from chartkit.chart import ROOT, defaults, load_yaml, presets

from ..invariants.values import coalesce  # Helm's coalesce of user values over chart defaults

if TYPE_CHECKING:
    from .examples import Example

SCHEMA = json.loads((ROOT / "values.schema.json").read_text())
DEFAULTS = defaults()
PRESETS = tuple(presets())  # every preset file of values/, a new one included
PRESET_VALUES = {p: load_yaml((ROOT / "values" / p).read_text()) for p in PRESETS}
RELEASE = "llama31"


def go_pattern(pattern: str) -> str:
    """A JSON-schema pattern for Python's re with Go RE2's meaning of `$`
    (end of text; Python's `$` also matches before a final newline)."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # a literal ] first in a class
                out.append("[]")
                i += 2
                continue
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


@cache
def _go_re(pattern: str) -> re.Pattern:
    return re.compile(go_pattern(pattern))


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string") and not _go_re(patrn).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


GoValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})
VALIDATOR = GoValidator(SCHEMA)


def node_validator(node: dict):
    return GoValidator(node)


def schema_errors(values: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in VALIDATOR.iter_errors(values)]


def merged_values(ex: Example) -> dict:
    """The values Helm validates and renders for an example."""
    base = copy.deepcopy(PRESET_VALUES[ex.preset])
    for path, text in ex.overrides:
        d = base
        keys = path.split(".")
        for k in keys[:-1]:
            if not isinstance(d.get(k), dict):
                d[k] = {}
            d = d[k]
        d[keys[-1]] = json.loads(text)  # strvals.ParseJSON sets (replaces) the leaf
    return coalesce(base, copy.deepcopy(DEFAULTS))


def _escape(ch: str) -> str:
    c = ord(ch)
    if c > 0xFFFF:
        c -= 0x10000
        return f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04x}"
    return f"\\u{c:04x}"


def json_arg(value) -> str:
    """JSON for --set-json: readable non-ASCII, every invisible character escaped."""
    return "".join(c if c.isprintable() else _escape(c) for c in json.dumps(value, ensure_ascii=False))


def node_at(path: tuple[str, ...]) -> dict:
    n = SCHEMA
    for k in path:
        n = n["properties"][k]
    return n


def _walk(node: dict, path: tuple[str, ...]):
    if node.get("type") == "object" and "properties" in node:
        if path:
            yield "object", path
        for k, sub in node["properties"].items():
            yield from _walk(sub, path + (k,))
    else:
        yield "leaf", path


LEAVES = tuple(p for kind, p in _walk(SCHEMA, ()) if kind == "leaf")
# Interior objects that refuse unknown keys (root included).
CLOSED_OBJECTS = ((),) + tuple(p for kind, p in _walk(SCHEMA, ()) if kind == "object" and node_at(p).get("additionalProperties") is False)
assert SCHEMA.get("additionalProperties") is False
