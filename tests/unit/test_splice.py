"""Splicing the published bytes gives exactly fastavro's encoding of the projection, for every catalogue schema."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharebus_rules.projection import derive_schema, project
from sharebus_rules.splice import Splicer, SpliceUnsupported, masked_bytes

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = sorted({*ROOT.joinpath("schemas").rglob("*.avsc"), *ROOT.joinpath("tests", "fixtures").rglob("*.avsc")})


def values(schema: Any, named: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values fastavro writes for ``schema`` (the types the catalogue uses, and the rest of Avro's)."""
    named = {} if named is None else named
    if isinstance(schema, list):
        return st.one_of([values(branch, named) for branch in schema])
    if isinstance(schema, str) and schema in named:
        return values(named[schema], named)
    if isinstance(schema, dict):
        if "name" in schema:
            named[schema["name"]] = schema
        logical, kind = schema.get("logicalType"), schema["type"]
        if logical == "date":
            return st.dates()
        if logical == "timestamp-millis":
            return st.datetimes(
                min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
            )
        if kind == "record":
            return st.fixed_dictionaries({f["name"]: values(f["type"], named) for f in schema["fields"]})
        if kind == "array":
            return st.lists(values(schema["items"], named), max_size=4)
        if kind == "map":
            return st.dictionaries(st.text(max_size=5), values(schema["values"], named), max_size=3)
        if kind == "enum":
            return st.sampled_from(schema["symbols"])
        if kind == "fixed":
            return st.binary(min_size=schema["size"], max_size=schema["size"])
        return values(kind, named)
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "string": st.text(max_size=40),
        "bytes": st.binary(max_size=20),
    }[schema]


def encode(schema: Any, record: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def check(writer: dict[str, Any], record: dict[str, Any], fields: list[str], masked: list[str]) -> None:
    payload = encode(writer, record)
    decoded = fastavro.schemaless_reader(io.BytesIO(payload), fastavro.parse_schema(writer), None)
    assert isinstance(decoded, dict)
    derived = derive_schema(writer, fields, masked)
    expected = encode(derived, project(decoded, fields, masked))
    assert Splicer(writer, fields, masked).project(payload, decoded) == expected


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_splicing_equals_encoding_the_projection(path: Path, data: st.DataObject) -> None:
    writer = json.loads(path.read_text())
    names = [f["name"] for f in writer["fields"]]
    record = data.draw(values(writer))
    fields = data.draw(
        st.permutations(names).flatmap(lambda order: st.integers(0, len(order)).map(lambda n: order[:n]))
    )
    masked = [f for f in fields if data.draw(st.booleans())]
    check(writer, record, fields, masked)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_dropping_fields_in_the_writers_order_equals_encoding_the_projection(path: Path, data: st.DataObject) -> None:
    """The router's common case (sensitive fields left out, none masked): spliced as runs of adjacent fields."""
    writer = json.loads(path.read_text())
    record = data.draw(values(writer))
    fields = [f["name"] for f in writer["fields"] if data.draw(st.booleans())]
    check(writer, record, fields, [])


COMPLEX: dict[str, Any] = {
    "type": "record",
    "name": "Everything",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "ratio", "type": "float"},
        {"name": "blob", "type": "bytes"},
        {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 3}},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "counts", "type": {"type": "map", "values": "long"}},
        {
            "name": "inner",
            "type": {"type": "record", "name": "Inner", "fields": [{"name": "n", "type": ["null", "long"]}]},
        },
        {
            "name": "other",
            "type": ["null", {"type": "record", "name": "Other", "fields": [{"name": "s", "type": "string"}]}],
        },
        {"name": "person_name", "type": ["null", "string"]},
    ],
}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_splicing_walks_every_kind_of_avro_value(data: st.DataObject) -> None:
    names = [f["name"] for f in COMPLEX["fields"]]
    record = data.draw(values(COMPLEX))
    fields = data.draw(st.permutations(names).map(lambda order: order[: data.draw(st.integers(0, len(order)))]))
    masked = [f for f in fields if f in ("person_name", "code", "inner", "tags") and data.draw(st.booleans())]
    check(COMPLEX, record, fields, masked)


def test_named_types_used_again_are_walked_as_defined() -> None:
    writer: dict[str, Any] = {
        "type": "record",
        "name": "Named",
        "fields": [
            {
                "name": "inner",
                "type": {
                    "type": "record",
                    "name": "Inner",
                    "fields": [{"name": "n", "type": "long"}],
                },
            },
            {
                "name": "colour",
                "type": {"type": "enum", "name": "Colour", "namespace": "ns", "symbols": ["RED", "GREEN"]},
            },
            {"name": "again", "type": ["null", "Inner"]},
            {"name": "qualified", "type": "Inner"},
            {"name": "more_colour", "type": "ns.Colour"},
            {"name": "last", "type": "string"},
        ],
    }
    record = {
        "inner": {"n": 5},
        "colour": "GREEN",
        "again": {"n": -300},
        "qualified": {"n": 7},
        "more_colour": "RED",
        "last": "x",
    }
    names = [f["name"] for f in writer["fields"]]
    check(writer, record, names, [])
    payload = encode(writer, record)
    assert Splicer(writer, ["last", "colour"], []).project(payload, record) == b"\x02x\x02"


def test_types_sharing_a_short_name_in_two_namespaces_stay_apart() -> None:
    # x.T is 2 bytes and y.T 8: confusing them would hand a consumer the bytes of a field it was not granted.
    writer: dict[str, Any] = {
        "type": "record",
        "name": "R",
        "namespace": "x",
        "fields": [
            {"name": "a", "type": {"type": "fixed", "name": "T", "size": 2}},
            {
                "name": "inner",
                "type": {
                    "type": "record",
                    "name": "I",
                    "namespace": "y",
                    "fields": [{"name": "t", "type": {"type": "fixed", "name": "T", "size": 8}}],
                },
            },
            {"name": "b", "type": "T"},
            {"name": "id_number", "type": "string"},
            {"name": "d", "type": "string"},
        ],
    }
    record = {"a": b"aa", "inner": {"t": b"12345678"}, "b": b"bb", "id_number": "SECRET", "d": "d"}
    check(writer, record, ["a", "b", "d"], [])
    assert b"SECRET" not in Splicer(writer, ["a", "b", "d"], []).project(encode(writer, record), record)
    twice = {**writer, "fields": [*writer["fields"], {"name": "z", "type": {"type": "fixed", "name": "T", "size": 1}}]}
    with pytest.raises(SpliceUnsupported, match="defined twice"):
        Splicer(twice, ["a"], [])


def test_arrays_written_in_sized_blocks_are_stepped_over_whole() -> None:
    writer: dict[str, Any] = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "long"}}, {"name": "tail", "type": "string"}],
    }
    # A block of 2 items with its byte size (count -2, size 2), then the end: as other writers may write it.
    payload = b"\x03\x04\x02\x04\x00" + b"\x04ok"
    assert Splicer(writer, ["tail"], []).project(payload, {"tail": "ok"}) == b"\x04ok"
    decoded = fastavro.schemaless_reader(io.BytesIO(payload), fastavro.parse_schema(writer), None)
    assert decoded == {"xs": [1, 2], "tail": "ok"}


def test_masked_fields_encode_as_an_optional_string() -> None:
    assert masked_bytes("person_name", None) == b"\x00"
    assert masked_bytes("person_name", "张三丰") == b"\x02" + bytes([2 * len("张**".encode())]) + "张**".encode()


def test_schemas_it_cannot_walk_are_refused_not_guessed() -> None:
    recursive = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    with pytest.raises(SpliceUnsupported, match="recursive"):
        Splicer(recursive, ["next"], [])
    with pytest.raises(SpliceUnsupported, match="not in the writer"):
        Splicer(COMPLEX, ["nope"], [])
    with pytest.raises(SpliceUnsupported, match="only records"):
        Splicer({"type": "string"}, [], [])
