"""The open-data rule: who may read a class on the open path, and that no sensitive field ever leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharebus_core.catalogue import Catalogue, OpenType, load_catalogue
from sharebus_rules.open_data import NotOpen, PublicAccess, open_fields, open_record, open_schema, public_access

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(ROOT / "schemas")


def test_every_class_gets_the_access_its_open_type_says(catalogue: Catalogue) -> None:
    seen = set()
    for entry in catalogue.data_classes.values():
        seen.add(entry.open_type)
        if entry.open_type is OpenType.NOT_OPEN:
            with pytest.raises(NotOpen):
                public_access(entry)
            with pytest.raises(NotOpen):
                open_fields(entry, catalogue.schema(entry.code).field_names)
        else:
            expected = PublicAccess.ANYONE if entry.open_type is OpenType.OPEN else PublicAccess.OPEN_DATA_KEY
            assert public_access(entry) is expected
    assert seen == set(OpenType), "the seed catalogue should exercise every open type"


def test_no_sensitive_field_is_ever_open(catalogue: Catalogue) -> None:
    with_sensitive = [
        e for e in catalogue.data_classes.values() if e.open_type is not OpenType.NOT_OPEN and e.sensitive_fields
    ]
    assert with_sensitive, "the seed catalogue should have an open class with sensitive fields"
    for entry in with_sensitive:
        names = catalogue.schema(entry.code).field_names
        fields = open_fields(entry, names)
        assert not set(fields) & set(entry.sensitive_fields)
        assert fields == tuple(f for f in names if f not in entry.sensitive_fields)
        record = dict.fromkeys(names, "x")
        assert set(open_record(record, fields)) == set(fields)
        schema = open_schema(json.loads(catalogue.schema(entry.code).text), fields)
        assert [f["name"] for f in schema["fields"]] == list(fields)


def test_an_open_record_drops_whatever_else_it_carries() -> None:
    assert open_record({"a": 1, "id_number": "11010519491231002X", "b": None}, ("a", "b")) == {"a": 1, "b": None}
