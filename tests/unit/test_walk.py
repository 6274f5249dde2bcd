"""The walker finds every field's bounds and the filled count, and accepts nothing fastavro cannot decode."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharebus_rules.quality import is_filled
from sharebus_rules.walk import Walker, WalkError
from tests.unit.test_splice import ROOT, SCHEMAS, encode, values

CATALOGUE_SCHEMAS = [p for p in SCHEMAS if p.is_relative_to(ROOT / "schemas")]
FLAT = {
    "type": "record",
    "name": "Flat",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "i", "type": "int"},
        {"name": "d", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "o", "type": ["null", "string"]},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
        {"name": "b", "type": "bytes"},
    ],
}


def walker_of(schema: dict[str, Any]) -> Walker:
    walker = Walker.compile(fastavro.parse_schema(schema))
    assert walker is not None
    return walker


def decodes(schema: dict[str, Any], payload: bytes) -> bool:
    """Whether fastavro decodes ``payload`` as exactly one record of ``schema``."""
    stream = io.BytesIO(payload)
    try:
        fastavro.schemaless_reader(stream, fastavro.parse_schema(schema), None)
    except (ValueError, IndexError, StopIteration, EOFError, OverflowError, MemoryError):
        # What fastavro raises for bytes that are not a record (UnicodeDecodeError is a ValueError).
        return False
    return stream.tell() == len(payload)


def expected_bounds(schema: dict[str, Any], record: dict[str, Any]) -> list[int]:
    """Each field's encoding on its own, one after the other: where Avro puts them."""
    bounds = [0]
    for field in schema["fields"]:
        single = {"type": "record", "name": "One", "fields": [{**field, "type": field["type"]}]}
        bounds.append(bounds[-1] + len(encode(single, {field["name"]: record[field["name"]]})))
    return bounds


def test_every_catalogue_schema_is_walked() -> None:
    assert CATALOGUE_SCHEMAS
    for path in CATALOGUE_SCHEMAS:
        assert Walker.compile(fastavro.parse_schema(json.loads(path.read_text()))) is not None, path


@pytest.mark.parametrize("path", CATALOGUE_SCHEMAS, ids=lambda p: p.stem)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_record_is_walked_to_its_fields_bounds_and_filled_count(path: Any, data: st.DataObject) -> None:
    schema = json.loads(path.read_text())
    record = data.draw(values(schema))
    payload = encode(schema, record)
    walked = walker_of(schema).walk(payload)
    assert walked.bounds == expected_bounds(schema, record)
    decoded = fastavro.schemaless_reader(io.BytesIO(payload), fastavro.parse_schema(schema), None)
    assert isinstance(decoded, dict)
    assert walked.filled == sum(is_filled(decoded[f["name"]]) for f in schema["fields"])


def corrupted(payload: bytes, data: st.DataObject) -> bytes:
    """``payload`` cut, padded, or with bytes changed, inserted or dropped."""
    how = data.draw(st.sampled_from(["cut", "pad", "change", "insert", "drop"]))
    at = data.draw(st.integers(0, max(0, len(payload) - 1)))
    noise = data.draw(st.binary(min_size=1, max_size=4))
    if how == "cut":
        return payload[:at]
    if how == "pad":
        return payload + noise
    if how == "change":
        return payload[:at] + noise[:1] + payload[at + 1 :]
    if how == "insert":
        return payload[:at] + noise + payload[at:]
    return payload[:at] + payload[at + 1 :]


@pytest.mark.parametrize("path", [*CATALOGUE_SCHEMAS[:12], None], ids=lambda p: p.stem if p else "flat")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whatever_the_walker_accepts_fastavro_decodes(path: Any, data: st.DataObject) -> None:
    schema = json.loads(path.read_text()) if path is not None else FLAT
    payload = corrupted(encode(schema, data.draw(values(schema))), data)
    try:
        walker_of(schema).walk(payload)
    except WalkError:
        return
    assert decodes(schema, payload), payload.hex()


def flat(**changes: bytes) -> bytes:
    """A record of FLAT, with some fields' bytes replaced."""
    fields = {
        "s": b"\x04ok",
        "i": b"\x02",
        "d": b"\x00",
        "t": b"\x00",
        "o": b"\x00",
        "e": b"\x02",
        "b": b"\x00",
    }
    return b"".join({**fields, **changes}.values())


def zigzag(value: int) -> bytes:
    return encode({"type": "record", "name": "L", "fields": [{"name": "v", "type": "long"}]}, {"v": value})


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"s": b"\x01"}, "does not fit"),  # a negative length: fastavro reads the rest of the record
        ({"b": b"\x08ab"}, "does not fit"),  # bytes cut short: fastavro returns them short
        ({"s": b"\x04\xff\xfe"}, "not UTF-8"),
        ({"i": zigzag(2**31)}, "outside the range"),
        ({"i": b"\x80\x80\x80\x80\x80\x01"}, "longer than 5 bytes"),
        ({"e": b"\x01"}, "outside the range"),  # -1: fastavro takes the last symbol
        ({"e": b"\x04"}, "outside the range"),
        ({"o": b"\x04"}, "not one of the 2 branches"),
        ({"d": zigzag(dt.date.max.toordinal() - dt.date(1970, 1, 1).toordinal() + 1)}, "outside the range"),
        ({"t": zigzag(253402300800000)}, "outside the range"),  # 10000-01-01
    ],
)
def test_what_avro_forbids_is_refused_with_the_reason(changes: dict[str, bytes], why: str) -> None:
    with pytest.raises(WalkError, match=why):
        walker_of(FLAT).walk(flat(**changes))


def test_the_last_day_and_millisecond_fastavro_can_read_are_accepted() -> None:
    last_day = dt.date.max.toordinal() - dt.date(1970, 1, 1).toordinal()
    payload = flat(d=zigzag(last_day), t=zigzag(253402300799999))
    assert walker_of(FLAT).walk(payload).bounds[-1] == len(payload)
    assert decodes(FLAT, payload)
    first = flat(d=zigzag(-719162), t=zigzag(-62135596800000))
    walker_of(FLAT).walk(first)
    assert decodes(FLAT, first)


def test_a_record_cut_short_or_followed_by_bytes_is_refused() -> None:
    whole = flat()
    with pytest.raises(WalkError, match="ends early"):
        walker_of(FLAT).walk(whole[:-1])
    with pytest.raises(WalkError, match="1 trailing byte"):
        walker_of(FLAT).walk(whole + b"\x00")
    empty_string_and_null = walker_of(FLAT).walk(flat(s=b"\x00", o=b"\x00", b=b"\x00"))
    assert empty_string_and_null.filled == 4  # i, d, t, e


@pytest.mark.parametrize(
    "field",
    [
        {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]},
        {"type": "array", "items": "string"},
        {"type": "map", "values": "long"},
        {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2},
        {"type": "string", "logicalType": "uuid"},
        {"type": "int", "logicalType": "time-millis"},
        ["null", ["string"]],
    ],
    ids=["record", "array", "map", "decimal", "uuid", "time", "nested-union"],
)
def test_a_schema_beyond_flat_fields_is_left_to_fastavro(field: Any) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": field}]}
    assert Walker.compile(schema) is None
