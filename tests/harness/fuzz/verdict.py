"""The verdict of one example rendered with Helm 3 and 4 (`check`): a list of Problems, each
with a signature stable under shrinking, so that Hypothesis keeps distinct bugs apart and
shrinks each. Beyond the Kubernetes schema tier it flags duplicate YAML keys, plain scalars
PyYAML and go-yaml read as different types, and what the API server refuses on sight; the
invariants run on what schema-valid values render."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import yaml

from chartkit import helm, k8s

from .examples import Example
from .oracle import RELEASE, SCHEMA, merged_values, schema_errors
from .yamlcheck import load

SCHEMA_MSG = "values don't meet the specifications of the schema"
RULE_MSG = "llama-factory: invalid values"
YAML_MARKERS = ("YAML parse error", "error converting YAML to JSON")
# Texts of Go template failures (for the report; anything that is neither a
# schema, a rule nor a YAML error counts as a crash).
# The most specific first: a signature names the first one the text holds.
CRASH_MARKERS = (
    "nil pointer",
    "wrong type for value",
    "can't evaluate field",
    "invalid value; expected",
    "cannot index",
    "unable to parse",
    "Cannot push on type",
    "panic",
    "error calling",
    'executing "',
    "<.Values",
)


@cache
def _registry(version: str):
    """chartkit.k8s's registry with retrieval cached (15x faster validation)."""
    from referencing import Registry

    return Registry(retrieve=cache(k8s._registry(version)._retrieve))


@cache
def _validator(api_version: str, kind: str, version: str):
    base = k8s.validator(api_version, kind, version)  # raises MissingSchema
    try:
        return type(base)(base.schema, registry=_registry(version))
    except AttributeError:  # chartkit.k8s changed shape: use its validator as is
        return base


def _tail(path) -> str:
    """The last two names of a path, indices dropped: what a signature keeps."""
    names = [str(p) for p in path if not isinstance(p, int) and not str(p).isdigit()]
    return "/".join(names[-2:]) or "<root>"


@dataclass
class Problem:
    signature: str  # stable under shrinking: what Hypothesis keeps distinct bugs apart by
    message: str


@dataclass
class Result:
    example: Example
    valid: bool
    schema_errors: list[str]
    outcome: dict = field(default_factory=dict)  # major -> "rendered" | "schema" | "rule" | "yaml" | "crash"
    stderr: dict = field(default_factory=dict)
    objects: tuple = ()
    problems: list[Problem] = field(default_factory=list)


def classify(rc: int, stderr: str) -> str:
    if rc == 0:
        return "rendered"
    if SCHEMA_MSG in stderr:
        return "schema"
    if RULE_MSG in stderr:
        return "rule"
    if any(m in stderr for m in YAML_MARKERS):
        return "yaml"
    return "crash"


_WHERE = re.compile(r"(templates/[\w./-]+\.(?:yaml|tpl|txt)):(\d+):(\d+)")


def crash_signature(stderr: str) -> str:
    """Where the template failed (its innermost frame: Helm 3 and 4 print the
    frames differently) and how."""
    frames = _WHERE.findall(stderr)
    where = ":".join(frames[-1]) if frames else "?"
    kind = next((k for k in CRASH_MARKERS if k in stderr and k not in ('executing "', "<.Values")), "error")
    return f"crash {where} {kind}"


def yaml_signature(stderr: str) -> str:
    m = re.search(r"YAML parse error on (?:[\w.-]+/)?(templates/\S+?):", stderr)
    return f"yaml-parse {m.group(1) if m else '?'}"


_RULE_LINE = re.compile(r"^  - ([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9_-]+|\[\d+\]|\[\"(?:[^\"\\]|\\.)*\"\])*): (.*)$")


def rule_bullets(stderr: str) -> list[str]:
    return [ln for ln in stderr[stderr.index(RULE_MSG) :].splitlines() if ln.startswith("  - ")]


def _rule_problems(stderr: str) -> list[Problem]:
    out = []
    bullets = rule_bullets(stderr)
    if not bullets:
        out.append(Problem("rule without bullets", stderr))
    for b in bullets:
        m = _RULE_LINE.match(b)
        if not m or m.group(1).split(".")[0].split("[")[0] not in SCHEMA["properties"]:
            out.append(Problem("rule names no field", b))
        elif "Fix:" not in b:
            out.append(Problem(f"rule without fix {m.group(1)}", b))
        if "%!" in b:
            out.append(Problem(f"rule message garbled {m.group(1) if m else '?'}", b))
    return out


def manifest_problems(objects) -> list[Problem]:
    """Every object against the Kubernetes (and T9k) schemas of the checked
    versions, as chartkit.k8s.errors reports them."""
    out = []
    for o in objects:
        if not isinstance(o, dict) or not isinstance(o.get("apiVersion"), str) or not isinstance(o.get("kind"), str):
            out.append(Problem("not a Kubernetes object", repr(o)[:2000]))
            continue
        kind, name = o["kind"], (o.get("metadata") or {}).get("name", "?")
        for version in k8s.K8S_VERSIONS:
            try:
                v = _validator(o["apiVersion"], kind, version)
            except k8s.MissingSchema as e:
                out.append(Problem(f"missing schema {kind}", str(e)))
                continue
            for e in v.iter_errors(o):
                where = "/".join(map(str, e.absolute_path)) or "<root>"
                out.append(
                    Problem(f"k8s {_tail(e.absolute_path)}: {e.validator}", f"Kubernetes {version}: {kind}/{name}: {where}: {e.message}")
                )
    return out


def apiserver_problems(objects) -> list[Problem]:
    """What the API server refuses that no JSON schema says: duplicate volume
    names, duplicate or dangling volume mounts, a Deployment whose selector does
    not select its own pods, and the rules of harness.invariants.apiserver_rules
    (name formats, label and annotation syntax, Service -> selector -> port, ...)."""
    from chartkit.pipeline import pod_templates

    from ..invariants import apiserver_rules

    out = [Problem(f"apiserver {_rule_kind(m)}", m) for m in apiserver_rules(objects)]
    for o, spec, _meta in pod_templates(objects):
        what = f"{o['kind']}/{o['metadata']['name']}"
        vols = [v.get("name") for v in spec.get("volumes") or []]
        for n in {v for v in vols if vols.count(v) > 1}:
            out.append(Problem(f"apiserver duplicate volume {o['kind']}", f"{what}: volume {n!r} twice"))
        for c in spec.get("containers") or []:
            mounts = c.get("volumeMounts") or []
            paths = [m.get("mountPath") for m in mounts]
            for p in {p for p in paths if paths.count(p) > 1}:
                out.append(
                    Problem(f"apiserver duplicate mountPath {o['kind']}", f"{what} container {c.get('name')}: mountPath {p!r} twice")
                )
            for m in mounts:
                if m.get("name") not in vols:
                    out.append(Problem(f"apiserver mount without volume {o['kind']}", f"{what}: mount {m.get('name')!r} names no volume"))
    for o in objects:
        if o.get("kind") == "Deployment":
            sel = o["spec"]["selector"].get("matchLabels") or {}
            labels = o["spec"]["template"]["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in sel.items()):
                out.append(
                    Problem(
                        "apiserver selector does not match template",
                        f"Deployment/{o['metadata']['name']}: selector {sel} vs labels {labels}",
                    )
                )
    return out


def _rule_kind(message: str) -> str:
    """A signature for an API-server rule message: its text without names and values."""
    text = message.rsplit(": ", 1)[-1]
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+|\{.*\}|\[.*\]", "_", text)[:80]


def invariant_problems(objects, values: dict) -> list[Problem]:
    """harness.invariants over a render of schema-valid values (the API-server
    rules run in apiserver_problems)."""
    from .. import invariants

    found = invariants.check(invariants.Render(tuple(objects), values, RELEASE), only=set(invariants.PER_RENDER) - {"api_server"})
    return [Problem(f"invariant {name}", m) for name, msgs in found.items() for m in msgs]


_POOL = ThreadPoolExecutor(2)


def render_both(ex: Example) -> dict:
    """major -> CompletedProcess; not cached (a long run would hold every output)."""
    futures = {m: _POOL.submit(helm.run, ex.release(m).args()) for m in helm.MAJORS}
    return {m: f.result() for m, f in futures.items()}


def _same_text(a: str, b: str) -> bool:
    """Helm 4 separates documents with a blank line more than Helm 3."""
    return [ln for ln in a.splitlines() if ln.strip()] == [ln for ln in b.splitlines() if ln.strip()]


def check(ex: Example) -> Result:
    values = merged_values(ex)
    errs = schema_errors(values)
    res = Result(ex, not errs, errs)
    procs = render_both(ex)
    for m, p in procs.items():
        res.outcome[m] = classify(p.returncode, p.stderr)
        res.stderr[m] = p.stderr
    P = res.problems.append
    outcomes = set(res.outcome.values())

    # Failures of the render itself.
    for m in helm.MAJORS:
        o, err = res.outcome[m], res.stderr[m]
        if o == "crash":
            P(Problem(crash_signature(err), f"Helm {m}: {err.strip()}"))
        elif o == "yaml":
            P(Problem(yaml_signature(err), f"Helm {m}: {err.strip()}"))
        elif o == "rule":
            for q in _rule_problems(err):
                P(Problem(q.signature, f"Helm {m}: {q.message}"))
    if res.valid and "schema" in outcomes:
        P(
            Problem(
                "schema-valid values refused by Helm's schema check",
                "jsonschema accepts the merged values; Helm says:\n"
                + next(res.stderr[m] for m in helm.MAJORS if res.outcome[m] == "schema"),
            )
        )
    if not res.valid and outcomes != {"schema"}:
        P(
            Problem(
                f"schema-invalid values not refused ({'/'.join(sorted(outcomes))})",
                "jsonschema rejects the merged values:\n  "
                + "\n  ".join(errs[:5])
                + "\nbut Helm: "
                + ", ".join(f"{m}: {res.outcome[m]}" for m in helm.MAJORS),
            )
        )

    # The two majors agree.
    if len(outcomes) > 1:
        P(Problem("majors disagree", "\n".join(f"Helm {m}: {res.outcome[m]}\n{res.stderr[m][:1500]}" for m in helm.MAJORS)))
    elif outcomes == {"rule"}:
        b3, b4 = (rule_bullets(res.stderr[m]) for m in helm.MAJORS)
        if b3 != b4:
            P(Problem("majors disagree on rule messages", f"Helm 3: {b3}\nHelm 4: {b4}"))

    # What rendered.
    rendered = [m for m in helm.MAJORS if res.outcome[m] == "rendered"]
    if not rendered:
        return res
    parsed = {}
    for m in rendered:
        if m != rendered[0] and rendered[0] in parsed and _same_text(procs[m].stdout, procs[rendered[0]].stdout):
            parsed[m] = parsed[rendered[0]]
            continue
        try:
            parsed[m] = load(procs[m].stdout)
        except yaml.YAMLError as e:
            P(Problem("PyYAML cannot read the render", f"Helm {m}: {e}"))
    if len(parsed) == 2 and parsed["3"][0] != parsed["4"][0]:
        P(Problem("majors render different objects", "Helm 3 and Helm 4 outputs parse to different objects"))
    if not parsed:
        return res
    objects, issues = next(iter(parsed.values()))
    res.objects = objects
    res.problems += manifest_problems(objects)
    res.problems += [Problem(f"yaml {kind} {_tail(path)}", msg) for kind, path, msg in issues]
    try:
        res.problems += apiserver_problems(objects)
    except (KeyError, TypeError, AttributeError) as e:
        if not res.problems:
            res.problems.append(Problem("objects malformed", repr(e)))
    if res.valid and not res.problems:
        res.problems += invariant_problems(objects, values)
    return res


def outcome_label(res: Result) -> str:
    return f"{'valid' if res.valid else 'invalid'} -> {res.outcome.get('3')}"


def report(res: Result) -> str:
    lines = [
        f"Reproducer ({'schema-valid' if res.valid else 'schema-invalid'} values; "
        f"Helm 3: {res.outcome.get('3')}, Helm 4: {res.outcome.get('4')}):",
        "  " + res.example.command("3"),
        "",
    ]
    if res.schema_errors:
        lines += ["jsonschema errors of the merged values:"] + ["  " + e for e in res.schema_errors[:8]] + [""]
    groups: dict[str, list[str]] = {}
    for p in res.problems:
        groups.setdefault(p.signature, []).append(p.message)
    for sig, msgs in list(groups.items())[:12]:
        lines.append(f"[{sig}]" + (f" ({len(msgs)} times)" if len(msgs) > 1 else ""))
        for msg in msgs[:3]:
            lines.append("  " + msg.replace("\n", "\n  ")[:3000])
    if len(groups) > 12:
        lines.append(f"... and {len(groups) - 12} more kinds of problem")
    return "\n".join(lines)
