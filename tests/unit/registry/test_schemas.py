"""Validation and the canonical form that decides schema identity (no broker)."""

from __future__ import annotations

import json

import pytest

from sharebus_registry.errors import InvalidSchema
from sharebus_registry.schemas import parse, parse_submitted

PERSON = {
    "type": "record",
    "name": "Person",
    "namespace": "t",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": ["null", "int"], "default": None}],
}


def test_formatting_and_attribute_order_do_not_change_identity() -> None:
    compact = json.dumps(PERSON, separators=(",", ":"))
    reordered = json.dumps(dict(reversed(list(PERSON.items()))), indent=4)
    assert parse(compact).canonical == parse(reordered).canonical


def test_a_primitive_is_the_same_schema_with_or_without_its_object_form() -> None:
    assert parse('"string"').canonical == parse('{"type": "string"}').canonical


def test_a_different_default_is_a_different_schema() -> None:
    other = json.loads(json.dumps(PERSON))
    other["fields"][1] = {"name": "age", "type": ["int", "null"], "default": 0}
    assert parse(json.dumps(PERSON)).canonical != parse(json.dumps(other)).canonical


def test_a_doc_is_part_of_identity() -> None:
    documented = {**PERSON, "doc": "someone"}
    assert parse(json.dumps(PERSON)).canonical != parse(json.dumps(documented)).canonical


def test_the_stored_text_keeps_the_submitted_layout_without_whitespace() -> None:
    parsed = parse(json.dumps({"type": "string", "x-owner": "team"}, indent=2))
    assert parsed.text == '{"type":"string","x-owner":"team"}'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ('{"type": "strin"}', "Undefined type"),
        ('{"type": "record", "name": "R"}', "fields"),
        ('{"type": "enum", "name": "E", "symbols": ["A", "A"]}', "Duplicate symbol"),
        ('{"type": "record", "name": "1R", "fields": []}', "valid Avro name"),
        ('{"type": "record", "name": "R", "fields": [{"name": "n", "type": "int", "default": "x"}]}', "default"),
        ('{"type": "record", "name": "R", "fields": [{"name": "n", "type": "int", "default": 4294967296}]}', "default"),
        (
            '{"type": "record", "name": "R", "fields": [{"name": "e", "type": {"type": "enum", "name": "E", '
            '"symbols": ["A"]}, "default": "B"}]}',
            "default",
        ),
    ],
)
def test_invalid_schemas_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidSchema) as caught:
        parse(text)
    assert caught.value.error_code == 42201
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("field_type", "default"),
    [
        (["null", "string"], None),
        (["null", "string"], "x"),  # Avro 1.12: any branch of the union
        ("bytes", "\u00ff"),
        ({"type": "array", "items": "long"}, [1, 2]),
        ({"type": "map", "values": "double"}, {"k": 1}),
        ({"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int", "default": 1}]}, {}),
    ],
)
def test_defaults_that_match_their_type_are_accepted(field_type: object, default: object) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type, "default": default}]}
    parse(json.dumps(schema))


def test_only_avro_is_supported() -> None:
    with pytest.raises(InvalidSchema, match="only supports AVRO"):
        parse_submitted('{"type": "object"}', "JSON")


def test_schema_type_is_case_insensitive_and_optional() -> None:
    assert parse_submitted('"int"', "avro").canonical == parse_submitted('"int"', None).canonical


def test_references_are_refused_but_an_empty_list_is_fine() -> None:
    parse_submitted('"int"', "AVRO", [])
    with pytest.raises(InvalidSchema, match="references"):
        parse_submitted('"int"', "AVRO", [{"name": "x", "subject": "s", "version": 1}])


@pytest.mark.parametrize("schema", [None, "", "   ", 42])
def test_a_missing_schema_is_invalid(schema: object) -> None:
    with pytest.raises(InvalidSchema, match="Empty schema"):
        parse_submitted(schema)
