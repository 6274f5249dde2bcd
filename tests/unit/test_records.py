"""Record validation names the offending field, whatever fastavro raised."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sharebus_core.catalogue import AvroSchema, load_catalogue
from sharebus_core.records import RecordInvalid
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR


@pytest.fixture(scope="module")
def schema() -> AvroSchema:
    return load_catalogue(DEFAULT_CATALOGUE_DIR).schema("301001001/000001")


def good() -> dict[str, Any]:
    return {
        "uscc": "91310110666007217T",
        "enterprise_name": "重庆示例科技有限公司",
        "enterprise_type": "有限责任公司",
        "legal_rep_name": "张三",
        "legal_rep_id_number": "11010519491231002X",
        "registered_capital": 100.0,
        "establishment_date": dt.date(2020, 1, 2),
        "registered_address": "重庆市渝中区",
        "business_scope": "软件",
        "registration_authority": "重庆市渝中区市场监督管理局",
        "status": "active",
        "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


def test_valid_record_passes(schema: AvroSchema) -> None:
    schema.validate(good())


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"registered_capital": "lots"}, "registered_capital", "does not fit type double"),
        ({"uscc": 42}, "uscc", "does not fit type string"),
        ({"establishment_date": "not a date"}, "establishment_date", "int/date"),
        ({"surprise": 1}, "surprise", "is not in the schema"),
    ],
)
def test_invalid_field_is_named(schema: AvroSchema, change: dict[str, Any], field: str, text: str) -> None:
    record = {**good(), **change}
    with pytest.raises(RecordInvalid) as info:
        schema.validate(record)
    assert info.value.field == field
    assert text in str(info.value)


def test_missing_field_is_named(schema: AvroSchema) -> None:
    record = good()
    del record["status"]
    with pytest.raises(RecordInvalid) as info:
        schema.validate(record)
    assert info.value.field == "status"
    assert "required and missing" in str(info.value)


def test_non_mapping_is_refused(schema: AvroSchema) -> None:
    with pytest.raises(RecordInvalid, match="must be a mapping"):
        schema.validate(["not", "a", "record"])
