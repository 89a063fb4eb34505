"""Hypothesis strategies derived from values.schema.json node by node: values a node accepts
(type, enum, bounds, pattern, lengths, arrays, objects, propertyNames, oneOf; the
pass-through nodes from `passthrough`), and one override the schema must reject."""

from __future__ import annotations

import json
from functools import cache

from hypothesis import strategies as st

from . import passthrough
from .oracle import CLOSED_OBJECTS, LEAVES, json_arg, node_at, node_validator
from .passthrough import EXTRA, PASSTHROUGH, WRONG_SHAPES
from .scalars import KNOWN_KEYS, _int_bounds, _number, _string, free_json, json_scalars, text


def valid(node: dict, path: tuple = ()) -> st.SearchStrategy:
    """Values the schema node accepts (the oracle has the last word)."""
    if path in PASSTHROUGH and passthrough.PASSTHROUGH_MODE != "raw":
        if passthrough.PASSTHROUGH_MODE == "k8s":
            return PASSTHROUGH[path]
        return st.one_of(PASSTHROUGH[path], _derived(node, path), *([WRONG_SHAPES[path]] if path in WRONG_SHAPES else []))
    if path in WRONG_SHAPES:
        return st.one_of(WRONG_SHAPES[path], _derived(node, path))
    if path in EXTRA:
        return st.one_of(EXTRA[path], _derived(node, path))
    return _derived(node, path)


def _derived(node: dict, path: tuple) -> st.SearchStrategy:
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "const" in node:
        return st.just(node["const"])
    if "oneOf" in node or ("anyOf" in node and "type" not in node):
        return st.one_of([valid(b, path) for b in node.get("oneOf", node.get("anyOf"))])
    types = node.get("type")
    types = [types] if isinstance(types, str) else (types or ["object"])
    return st.one_of([_typed(t, node, path) for t in types])


def _typed(t: str, node: dict, path: tuple) -> st.SearchStrategy:
    if t == "null":
        return st.none()
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        lo, hi = _int_bounds(node)
        ints = st.integers(lo, hi)
        # Helm reads every number as float64 and `{{ . }}` prints one of 1e6 or more as
        # 1e+06: draw such values often, not just when integers() happens to.
        edges = [v for v in (10**6, 1234567, 2**31 - 1) if lo <= v <= hi]
        return st.one_of(ints, ints, st.sampled_from(edges)) if edges else ints
    if t == "number":
        return _number(node)
    if t == "string":
        return _string(node)
    if t == "array":
        items = node.get("items", {})
        hi = min(node.get("maxItems", 4), 4)
        inner = valid(items, path + ("*",)) if items else json_scalars()
        return st.lists(
            inner,
            min_size=node.get("minItems", 0),
            max_size=max(hi, node.get("minItems", 0)),
            unique_by=(lambda v: json.dumps(v, sort_keys=True)) if node.get("uniqueItems") else None,
        )
    if t == "object":
        return _object(node, path)
    raise ValueError(f"no strategy for type {t!r} at {path}")


def _object(node: dict, path: tuple) -> st.SearchStrategy[dict]:
    props = node.get("properties", {})
    addl = node.get("additionalProperties", True)
    if props:
        required = set(node.get("required", ()))
        branches = [set(b.get("required", ())) for b in node.get("anyOf", ())] or [set()]

        def build(req):
            req = required | req
            return st.fixed_dictionaries(
                {k: valid(props[k], path + (k,)) for k in sorted(req)},
                optional={k: valid(v, path + (k,)) for k, v in props.items() if k not in req},
            )

        return st.one_of([build(b) for b in branches])
    if isinstance(addl, dict):
        names = node.get("propertyNames", {})
        keys = (
            _string({"type": "string", **names}, key_of=path)
            if names
            else (st.one_of(st.sampled_from(KNOWN_KEYS[path]), text(1, 12)) if path in KNOWN_KEYS else text(1, 12))
        )
        lo = node.get("minProperties", 0)
        return st.dictionaries(keys, valid(addl, path + ("*",)), min_size=lo, max_size=max(lo, 3))
    lo, hi = node.get("minProperties", 0), node.get("maxProperties", 3)
    if path in KNOWN_KEYS:
        return free_json(st.one_of(st.sampled_from(KNOWN_KEYS[path]), text(1, 10)), lo, hi)
    return free_json(None, lo, hi)


@cache
def leaf_strategy(path: tuple) -> st.SearchStrategy:
    return valid(node_at(path), path)


# Strategies of invalid values.

_WRONG_TYPES = ("fuzz", 7, 2.5, True, [1], {"k": 1})


def _violations(node: dict) -> list:
    """Values that break one constraint of a node (not the type)."""
    out = []
    for k in ("minimum", "exclusiveMinimum"):
        if k in node:
            out += [node[k] - 1, node[k] - 0.5] if k == "minimum" else [node[k], node[k] - 1]
    for k in ("maximum", "exclusiveMaximum"):
        if k in node:
            out += [node[k] + 1, node[k] + 0.5] if k == "maximum" else [node[k], node[k] + 1]
    if "minLength" in node and node["minLength"] > 0:
        out.append("")
    if "maxLength" in node:
        out.append("a" * (node["maxLength"] + 1))
    if "pattern" in node:
        out += ["Bad Value!", "a b", "x\n", "\n", "UPPER", "-a-", "é"]
    if "enum" in node:
        out += ["fuzz-not-in-enum", 3 if all(isinstance(e, str) for e in node["enum"]) else "3"]
    if node.get("minItems"):
        out.append([])
    if node.get("uniqueItems") and "items" in node:
        enum = node["items"].get("enum")
        out.append([enum[0], enum[0]] if enum else ["a", "a"])
    if "items" in node:
        out.append(["Bad Value!", 3])
    if "propertyNames" in node:
        out.append({"Bad Key!": {}})
    if "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        out += [{"k": "v"}, {"k": 3}, {"k": None}, {"k": {"x": 1}}]
    for b in node.get("oneOf", ()):
        out += _violations(b)
    return out


@st.composite
def invalid_override(draw) -> tuple[str, str]:
    """One override the schema must reject: a wrong type, a broken constraint
    or an unknown key."""
    kind = draw(st.sampled_from(("type", "constraint", "unknown")))
    if kind == "unknown":
        parent = draw(st.sampled_from(CLOSED_OBJECTS))
        known = set(node_at(parent)["properties"])
        key = draw(st.from_regex(r"[a-z][a-zA-Z0-9]{0,10}", fullmatch=True).filter(lambda k: k not in known))
        value = draw(json_scalars(null=False))
        return ".".join(parent + (key,)), json_arg(value)
    if kind == "type":
        path = draw(st.sampled_from(LEAVES + CLOSED_OBJECTS[1:]))
        v = node_validator(node_at(path))
        value = draw(st.sampled_from([w for w in _WRONG_TYPES if not v.is_valid(w)]))
        return ".".join(path), json_arg(value)
    candidates = [p for p in LEAVES if _violations(node_at(p))]
    path = draw(st.sampled_from(candidates))
    v = node_validator(node_at(path))
    bad = [w for w in _violations(node_at(path)) if not v.is_valid(w)]
    if not bad:  # e.g. a violation of one oneOf branch that another accepts
        bad = [w for w in _WRONG_TYPES if not v.is_valid(w)]
    return ".".join(path), json_arg(draw(st.sampled_from(bad)))
