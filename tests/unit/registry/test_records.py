"""The ``_schemas`` record format: Confluent/Karapace keys and values, byte for byte (no broker)."""

from __future__ import annotations

import json

import pytest

from sharebus_registry.compat import CompatibilityLevel
from sharebus_registry.records import (
    ConfigKey,
    ConfigValue,
    DeleteSubjectKey,
    DeleteSubjectValue,
    MalformedRecord,
    Record,
    SchemaKey,
    SchemaValue,
    decode,
    encode,
)


def test_schema_keys_and_values_use_the_confluent_layout() -> None:
    key, value = encode(Record(SchemaKey("orders-value", 3), SchemaValue("orders-value", 3, 7, '"int"')))
    assert key == b'{"keytype":"SCHEMA","subject":"orders-value","version":3,"magic":1}'
    assert json.loads(value or b"") == {
        "subject": "orders-value",
        "version": 3,
        "id": 7,
        "schema": '"int"',
        "deleted": False,
    }


def test_config_keys_use_null_for_the_global_level() -> None:
    key, value = encode(Record(ConfigKey(None), ConfigValue(CompatibilityLevel.FULL)))
    assert key == b'{"keytype":"CONFIG","subject":null,"magic":0}'
    assert value == b'{"compatibilityLevel":"FULL"}'


def test_a_tombstone_has_no_value() -> None:
    assert encode(Record(SchemaKey("s", 1), None))[1] is None
    assert decode(b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}', None) == Record(SchemaKey("s", 1), None)


@pytest.mark.parametrize(
    "record",
    [
        Record(SchemaKey("s", 2), SchemaValue("s", 2, 5, '"long"', deleted=True)),
        Record(ConfigKey("s"), ConfigValue(CompatibilityLevel.NONE)),
        Record(ConfigKey("s"), None),
        Record(DeleteSubjectKey("s"), DeleteSubjectValue("s", 4)),
    ],
)
def test_records_round_trip(record: Record) -> None:
    assert decode(*encode(record)) == record


def test_the_same_key_always_encodes_to_the_same_bytes_so_compaction_keeps_one() -> None:
    first, _ = encode(Record(SchemaKey("s", 1), None))
    second, _ = encode(Record(SchemaKey("s", 1), SchemaValue("s", 1, 1, '"int"')))
    assert first == second


def test_key_types_this_registry_does_not_use_are_skipped() -> None:
    assert decode(b'{"keytype":"NOOP","magic":0}', b"{}") is None
    assert decode(b'{"keytype":"MODE","subject":null,"magic":0}', b'{"mode":"READWRITE"}') is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, b"{}"),
        (b"not json", None),
        (b"[1]", None),
        (b'{"keytype":"SCHEMA","subject":"s","version":"1","magic":1}', None),
        (b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}', b'{"subject":"s"}'),
        (b'{"keytype":"CONFIG","subject":null,"magic":0}', b'{"compatibilityLevel":"SIDEWAYS"}'),
    ],
)
def test_malformed_records_are_reported(key: bytes | None, value: bytes | None) -> None:
    with pytest.raises(MalformedRecord):
        decode(key, value)
