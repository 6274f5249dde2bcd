"""No single record on ``<ns>._schemas`` can stop the log reader: it is skipped, and the next is applied.

Finding: a deeply nested JSON record raised RecursionError, which neither ``records.decode`` nor
``KafkaSchemaLog._apply`` caught, so it ended the reader thread for good, and every restart stalled on it
(StoreUnavailable). Anyone who may write the topic could send one.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from sharebus_registry import kafka_log
from sharebus_registry.errors import InvalidSchema
from sharebus_registry.kafka_log import KafkaSchemaLog
from sharebus_registry.records import MalformedRecord, Record, SchemaKey, SchemaValue, decode, encode
from sharebus_registry.schemas import parse
from sharebus_registry.state import RegistryState

SCHEMA_KEY = b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}'
DEEP = b"[" * 200_000
GOOD = encode(Record(SchemaKey("s", 1), SchemaValue("s", 1, 1, '"int"')))


def reader(state: RegistryState) -> KafkaSchemaLog:
    """A log reader with no broker: only ``_apply``, the step the reader thread runs per record, is used."""
    return KafkaSchemaLog(cast(Any, None), "sharebus._schemas", state)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (DEEP, None),
        (SCHEMA_KEY, DEEP),
        (SCHEMA_KEY, b'{"subject":"s","version":1,"id":1' + b"9" * 5000 + b',"schema":"\\"int\\""}'),
    ],
    ids=["deep-key", "deep-value", "number-too-long"],
)
def test_json_the_parser_cannot_take_is_a_malformed_record(key: bytes, value: bytes | None) -> None:
    with pytest.raises(MalformedRecord):
        decode(key, value)


def test_a_deeply_nested_record_is_skipped_and_the_reader_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    state = RegistryState()
    log = reader(state)
    with caplog.at_level(logging.WARNING, logger=kafka_log.__name__):
        log._apply(SCHEMA_KEY, DEEP, 7)
    assert "skipping malformed record at sharebus._schemas offset 7" in caplog.text
    log._apply(*GOOD, 8)
    assert state.schema_text(1) == '"int"'


def test_any_error_decoding_a_record_skips_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(key: bytes | None, value: bytes | None) -> Record | None:
        raise TypeError("a decoding bug")

    state = RegistryState()
    log = reader(state)
    monkeypatch.setattr(kafka_log, "decode", broken)
    log._apply(*GOOD, 7)  # logged and skipped, not raised into the reader thread
    monkeypatch.setattr(kafka_log, "decode", decode)
    log._apply(*GOOD, 8)
    assert state.schema_text(1) == '"int"'


def test_a_deeply_nested_schema_in_a_record_is_served_but_takes_no_part_in_identity() -> None:
    """The record's JSON is fine, its schema text is not: stored as any unparseable schema of the log is."""
    deep_schema = '{"type":"array","items":' * 5_000 + '"int"' + "}" * 5_000
    with pytest.raises(InvalidSchema, match="nested too deeply"):
        parse(deep_schema)
    state = RegistryState()
    reader(state)._apply(*encode(Record(SchemaKey("s", 1), SchemaValue("s", 1, 1, deep_schema))), 7)
    assert state.schema_text(1) == deep_schema
    assert state.parsed(1) is None
