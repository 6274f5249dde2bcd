"""Record validation names the offending field, whatever fastavro raised."""

from __future__ import annotations

import datetime as dt
import io
import json
from types import SimpleNamespace
from typing import Any, cast

import fastavro
import pytest

from sharebus_core.catalogue import AvroSchema, load_catalogue
from sharebus_core.records import RecordInvalid
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_sdk.identity import ClientIdentity
from sharebus_sdk.publisher import Publisher


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


PLUS_ONE = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"establishment_date": 10**9}, "establishment_date"),
        ({"establishment_date": 2_932_897}, "establishment_date"),  # 10000-01-01
        ({"establishment_date": -719_163}, "establishment_date"),  # 0000-12-31
        ({"updated_at": 253_402_300_800_000}, "updated_at"),  # 10000-01-01T00:00Z in ms
        ({"updated_at": -62_135_596_800_001}, "updated_at"),  # 1 ms before 0001-01-01T00:00Z
        ({"updated_at": dt.datetime(1, 1, 1, tzinfo=PLUS_ONE)}, "updated_at"),  # 0000-12-31T23:00Z
    ],
)
def test_dates_and_times_no_reader_can_decode_are_refused(
    schema: AvroSchema, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordInvalid, match="out of range") as info:
        schema.validate({**good(), **change})
    assert info.value.field == field


@pytest.mark.parametrize(
    "change",
    [
        {"establishment_date": 2_932_896, "updated_at": 253_402_300_799_999},
        {"establishment_date": -719_162, "updated_at": -62_135_596_800_000},
        {"establishment_date": dt.date.max, "updated_at": dt.datetime.max.replace(tzinfo=dt.UTC)},
        {"establishment_date": dt.date.min, "updated_at": dt.datetime.min.replace(tzinfo=dt.UTC)},
    ],
)
def test_the_range_limits_are_what_a_reader_decodes(schema: AvroSchema, change: dict[str, Any]) -> None:
    record = {**good(), **change}
    schema.validate(record)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, record)
    buffer.seek(0)
    decoded = fastavro.schemaless_reader(buffer, schema.parsed, schema.parsed)
    assert isinstance(decoded, dict)
    assert decoded["establishment_date"] in (dt.date.min, dt.date.max)


@pytest.mark.parametrize("field", ["enterprise_name", "uscc"])  # uscc is the class's key field
def test_text_utf8_cannot_encode_is_refused_by_field(schema: AvroSchema, field: str) -> None:
    with pytest.raises(RecordInvalid, match="cannot be encoded as UTF-8") as info:
        schema.validate({**good(), field: "重庆\ud800"})
    assert info.value.field == field


def test_nested_values_are_checked_too() -> None:
    nested = AvroSchema.parse(
        json.dumps(
            {
                "type": "record",
                "name": "Nested",
                "fields": [
                    {"name": "days", "type": {"type": "array", "items": {"type": "int", "logicalType": "date"}}},
                    {"name": "tags", "type": {"type": "map", "values": "string"}},
                    {"name": "when", "type": ["null", "string", {"type": "long", "logicalType": "timestamp-micros"}]},
                ],
            }
        )
    )
    nested.validate({"days": [0, 2_932_896], "tags": {"k": "v"}, "when": "not a time, a string"})
    for record, field in [
        ({"days": [0, 10**9], "tags": {}, "when": None}, "days"),
        ({"days": [], "tags": {"\udc80": "v"}, "when": None}, "tags"),
        ({"days": [], "tags": {}, "when": 10**18}, "when"),
    ]:
        with pytest.raises(RecordInvalid) as info:
            nested.validate(record)
        assert info.value.field == field


def test_the_sdk_publisher_refuses_them_before_serializing(monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = object.__new__(Publisher)
    publisher.catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    publisher.department = "AMR"
    publisher.identity = cast(ClientIdentity, SimpleNamespace(system=None, raise_if_refused=lambda: None))

    def serializer(_code: str) -> Any:
        raise AssertionError("an invalid record reached the serializer")

    monkeypatch.setattr(publisher, "_serializer", serializer)
    for change in ({"establishment_date": 10**9}, {"uscc": "\ud800"}):
        with pytest.raises(RecordInvalid):
            publisher.publish("301001001/000001", {**good(), **change})
