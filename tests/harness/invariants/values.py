"""The values a render was made from: Helm's merge of chart defaults, values files, --set-json
and --set, written out again for the harness's releases; and Render, what every invariant reads."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field

from chartkit.chart import ROOT, defaults, load_yaml

DEFAULTS_FILE = ROOT / "values.yaml"


def merge_maps(a: dict, b: dict) -> dict:
    """Helm's merge of values files: later wins, maps merge."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge_maps(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def coalesce(user: dict, chart: dict) -> dict:
    """Helm's coalesce of user values over chart defaults: a user null deletes a default key."""
    for key, val in chart.items():
        if key in user:
            if user[key] is None:
                del user[key]
            elif isinstance(user[key], dict) and isinstance(val, dict):
                coalesce(user[key], val)
        else:
            user[key] = copy.deepcopy(val)
    return user


def _split_top(text: str, sep: str = ",") -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def _set_value(text: str):
    """What Helm's strvals makes of a --set value: {a,b} lists, bools, null, int64; else a string."""
    if text.startswith("{") and text.endswith("}"):
        return [_set_value(t) for t in _split_top(text[1:-1])] if text[1:-1] else []
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", text):
        return int(text)
    return text


def _put(d: dict, path: str, value) -> None:
    keys = re.split(r"(?<!\\)\.", path)
    for k in keys[:-1]:
        k = k.replace("\\.", ".")
        if not isinstance(d.get(k), dict):
            d[k] = {}
        d = d[k]
    d[keys[-1].replace("\\.", ".")] = value


def values_of(files=(), sets=(), set_json=()) -> dict:
    """The values Helm renders with: chart defaults, values files, --set-json, --set."""
    user: dict = {}
    for f in files:
        user = merge_maps(user, load_yaml((ROOT / f).read_text()) or {})
    for s in set_json:
        k, _, v = s.partition("=")
        _put(user, k, json.loads(v))
    for s in sets:
        for part in _split_top(s):
            k, _, v = part.partition("=")
            _put(user, k, _set_value(v))
    return coalesce(user, defaults())


@dataclass(frozen=True)
class Render:
    objects: tuple
    values: dict = field(hash=False, compare=False)
    release: str = "llama31"
    namespace: str = "default"

    def of(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == kind]

    def component(self, o: dict) -> str:
        return ((o.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", "")
