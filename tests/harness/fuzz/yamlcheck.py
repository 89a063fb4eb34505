"""YAML as go-yaml v2 (sigs.k8s.io/yaml, what Helm and kubectl read) resolves plain scalars:
the documents of a render with its duplicate keys and the plain scalars PyYAML and go-yaml
read as different types."""

from __future__ import annotations

import re

import yaml

_GO_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_GO_MAP = {
    **{
        s: "bool"
        for s in (
            "y",
            "Y",
            "yes",
            "Yes",
            "YES",
            "true",
            "True",
            "TRUE",
            "on",
            "On",
            "ON",
            "n",
            "N",
            "no",
            "No",
            "NO",
            "false",
            "False",
            "FALSE",
            "off",
            "Off",
            "OFF",
        )
    },
    **{s: "null" for s in ("", "~", "null", "Null", "NULL")},
    **{s: "float" for s in (".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF")},
}
_GO_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?$")


def _go_int(s: str) -> bool:
    s = s.replace("_", "")
    m = re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]*|0[bB][01]+|[1-9][0-9]*)", s)
    return m is not None


def go_kind(s: str) -> str:
    if s in _GO_MAP:
        return _GO_MAP[s]
    c = s[:1]
    if c == ".":
        try:
            float(s)
            return "float" if _GO_FLOAT.match(s) else "str"
        except ValueError:
            return "str"
    if c.isdigit() or c in "+-":
        if _GO_TIMESTAMP.match(s):
            return "timestamp"
        if _go_int(s):
            return "int"
        if _GO_FLOAT.match(s.replace("_", "")):
            return "float"
    return "str"


_PY_KIND = {"null": "null", "bool": "bool", "int": "int", "float": "float", "str": "str", "timestamp": "timestamp"}


def _node_problems(node, path: list, out: list) -> None:
    """Duplicate mapping keys, and plain scalars that PyYAML (the harness's
    reader) and go-yaml (Helm's and kubectl's) read as different types."""
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else repr(k)
            if key in seen:
                out.append(("duplicate key", path + [key], f"duplicate key {key!r}"))
            seen.add(key)
            _node_problems(k, path + [f"<key {key}>"], out)
            _node_problems(v, path + [str(key)], out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _node_problems(v, path + [str(i)], out)
    elif isinstance(node, yaml.ScalarNode) and node.style is None:
        py = _PY_KIND.get(node.tag.rsplit(":", 1)[-1], "str")
        go = go_kind(node.value)
        if {py, go} != {"int", "float"} and py != go:
            out.append(("ambiguous scalar", path, f"plain scalar {node.value!r} reads as {py} in PyYAML, {go} in go-yaml (Helm, kubectl)"))


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> tuple[tuple, list]:
    """The documents of a render (as yaml.safe_load_all reads them; libyaml when
    present, for speed) and the YAML-level problems of each."""
    loader = _Loader(text)
    docs, issues = [], []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            found = []
            _node_problems(node, [], found)
            doc = loader.construct_document(node)
            if doc:
                docs.append(doc)
                what = f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}" if isinstance(doc, dict) else "?"
                issues += [(kind, path, f"{what}: {'/'.join(path)}: {msg}") for kind, path, msg in found]
    finally:
        loader.dispose()
    return tuple(docs), issues
