"""Masking and projection are pure functions."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest

from sharebus_rules.projection import derive_schema, mask_name, mask_resident_id, mask_value, project


def test_resident_id_keeps_first_six_and_last_four() -> None:
    assert mask_resident_id("11010519491231002X") == "110105********002X"
    assert mask_resident_id("1234567890") == "**********"


def test_name_keeps_its_first_character() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("李") == "李"
    assert mask_name("") == ""


@pytest.mark.parametrize(
    ("field", "value", "masked"),
    [
        ("legal_rep_id_number", "11010519491231002X", "110105********002X"),
        ("person_id_number", "11010519491231002X", "110105********002X"),
        ("legal_rep_name", "王小明", "王**"),
        ("phone", "13800138000", "*******8000"),
        ("amount", 1234.5, "**34.5"),
        ("anything", None, None),
    ],
)
def test_the_rule_follows_the_field_name(field: str, value: object, masked: str | None) -> None:
    assert mask_value(field, value) == masked


def test_project_keeps_granted_fields_in_order_and_masks() -> None:
    record = {"uscc": "X", "legal_rep_name": "张三", "legal_rep_id_number": "11010519491231002X", "capital": 5.0}
    assert project(record, ("uscc", "legal_rep_id_number"), {"legal_rep_id_number"}) == {
        "uscc": "X",
        "legal_rep_id_number": "110105********002X",
    }


def test_derived_schema_encodes_the_projection() -> None:
    schema: dict[str, Any] = {
        "type": "record",
        "name": "E",
        "namespace": "t",
        "doc": "d",
        "fields": [
            {"name": "uscc", "type": "string", "doc": "code"},
            {"name": "capital", "type": "double"},
            {"name": "id_number", "type": "string"},
        ],
    }
    derived = derive_schema(schema, ("uscc", "id_number"), {"id_number"})
    assert [f["name"] for f in derived["fields"]] == ["uscc", "id_number"]
    assert derived["fields"][1]["type"] == ["null", "string"]
    assert derived["fields"][0]["doc"] == "code"
    assert schema["fields"][2]["type"] == "string"  # the original is untouched
    record = project(
        {"uscc": "A", "capital": 1.0, "id_number": "11010519491231002X"}, ("uscc", "id_number"), {"id_number"}
    )
    parsed = fastavro.parse_schema(json.loads(json.dumps(derived)))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    buffer.seek(0)
    assert fastavro.schemaless_reader(buffer, parsed, None) == record
