"""scripts/values_doc.py reads each value's type and bounds from the `# @schema` annotation next
to its key in values.yaml (or from its default): every key resolves to a schema node, and a key
whose type cannot be resolved stops the script instead of slipping into the schema untyped."""

import json

import pytest
import yaml

import values_doc
from chartkit.chart import ROOT

TEXT = (ROOT / "values.yaml").read_text()
VALUES = yaml.safe_load(TEXT)
SCHEMA = json.loads((ROOT / "values.schema.json").read_text())


def free_form(node: dict) -> bool:
    return node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node


def test_every_key_of_values_yaml_has_a_typed_schema_node():
    """Every leaf of values.yaml is checked by a node with a type: its own, or that of the map
    of entries or the free-form map it sits in."""
    for leaf in values_doc.leaves(VALUES):
        node = values_doc.resolve(SCHEMA, leaf)
        assert node is not None, f"{leaf}: the schema has no place for it"
        assert "type" in node or "oneOf" in node, f"{leaf}: its schema node has no type"


def test_every_annotation_names_a_key_the_schema_took_it_for():
    """Each `# @schema` line lands on its key: the key's node carries what it says."""
    _, notes = values_doc.comments(TEXT)
    assert len(notes) > 100
    for path, pairs in notes.items():
        node = values_doc.schema_node(SCHEMA, path)
        for pair in pairs:
            name, _, raw = pair.partition(":")
            if name == "pattern":
                assert node["pattern"] == raw, path
            elif name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"):
                assert node[name] == yaml.safe_load(raw), path


def test_no_annotation_leaks_into_a_description():
    docs = values_doc.documented_keys(TEXT)
    assert not [p for p, d in docs.items() if "@schema" in d]


def build(body: str) -> dict:
    return values_doc.build(body)[0]


def test_types_come_from_the_annotation_or_the_default():
    schema = build(
        "# -- a string\nname: x\n"
        "# -- an integer\n# @schema minimum:1;maximum:16\ngpus: 2\n"
        "# -- a boolean\nenabled: false\n"
        "# -- a decimal\n# @schema $ref:decimal;exclusiveMinimum:0;maximum:1\nrate: 0.5\n"
        "# -- nullable\n# @schema type:[integer, null];minimum:1\nlimit: null\n"
        '# -- optional\n# @schema maxLength:40;$ref:optionalDnsLabel;required:false\nrun: ""\n'
        "# -- a list\n# @schema type:array;items.type:string;items.$ref:dns\nnames: []\n"
        "block:\n  # -- an enum\n  # @schema enum:[cpu, auto]\n  device: cpu\n"
    )
    props = schema["properties"]
    assert props["name"] == {"type": "string", "description": "a string"}
    assert props["gpus"] == {"type": "integer", "minimum": 1, "maximum": 16, "description": "an integer"}
    assert props["enabled"] == {"type": "boolean", "description": "a boolean"}
    assert props["rate"]["type"] == ["number", "string"] and props["rate"]["pattern"] == values_doc.DECIMAL
    assert (props["rate"]["exclusiveMinimum"], props["rate"]["maximum"]) == (0, 1)
    assert props["limit"]["type"] == ["integer", "null"]
    assert props["run"]["pattern"] == values_doc.OPT_LABEL and list(props["run"])[:2] == ["type", "maxLength"]
    assert props["names"]["items"] == {"type": "string", "pattern": values_doc.DNS}
    assert props["block"]["additionalProperties"] is False
    assert props["block"]["properties"]["device"]["enum"] == ["cpu", "auto"]
    # Required: every key but the nullable one and the one marked required:false, in values.yaml's order.
    assert schema["required"] == ["name", "gpus", "enabled", "rate", "names", "block"]
    assert values_doc.decimal_fields(schema) == [("rate", {"exclusiveMinimum": 0, "maximum": 1})]


@pytest.mark.parametrize(
    "body,needle",
    [
        ("# -- nullable\nlimit: null\n", "limit has no `# @schema` type and its default is null"),
        ("# -- a decimal\nrate: 0.5\n", "rate has no `# @schema` type and its default is a decimal"),
        ("# -- a list\nnames: []\n", "names has no `# @schema` type and its default is a list"),
        ("# -- a map\nextra: {}\n", "extra has no `# @schema` type and its default is an empty map"),
        ("# -- a fragment\n# @schema $ref:dsn\nname: x\n", "no fragment named 'dsn'"),
        ("# -- a typo\n# @schema minimum=1\ngpus: 2\n", "`minimum=1` is not `name:value`"),
        ('# -- YAML\'s booleans\n# @schema enum:[yes, no]\nanswer: "yes"\n', "enum entries [True, False] are not of type string"),
        ("# -- required\n# @schema required:no-thanks\nname: x\n", "`required` is true or false"),
        (
            "# -- free-form\n# @schema type:object\nctx:\n  # @schema minimum:0\n  uid: 1000\n",
            "annotations inside a key whose type comes from its own annotation: ctx.uid",
        ),
        ("# -- a list\n# @schema type:array\nnames:\n  # @schema minLength:1\n  - x\n", "above a line that is not a key"),
        ("# -- undocumented below\nblock:\n  x: 1\nother: 2\n", "no `# --` comment documents other"),
    ],
)
def test_a_key_whose_type_cannot_be_resolved_stops_the_script(body, needle):
    with pytest.raises(SystemExit) as e:
        build(body)
    assert needle in str(e.value)


def test_a_value_with_no_place_in_the_schema_stops_the_script():
    """A default the annotated node leaves no room for (an entry of a closed fragment)."""
    with pytest.raises(SystemExit) as e:
        build("# -- scheduling\n# @schema $ref:scheduling\nscheduling:\n  zone: a\n")
    assert "the schema has no place for scheduling.zone" in str(e.value)
