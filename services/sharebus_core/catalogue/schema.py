"""A data class's Avro schema, parsed once at load time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import avro.errors
import avro.schema
import fastavro
from fastavro.validation import validate as fastavro_validate
from fastavro.write import LOGICAL_WRITERS

from sharebus_core.errors import SharebusError
from sharebus_core.records import RecordInvalid, find_invalid_field


class SchemaParseError(SharebusError, ValueError):
    pass


_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FIRST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LAST = dt.datetime.max.replace(tzinfo=dt.UTC)
_MS, _US = dt.timedelta(milliseconds=1), dt.timedelta(microseconds=1)
_DAY_MS = 86_400_000
_INSTANTS = "an instant from 0001-01-01 to 9999-12-31 (UTC)"
_LOCAL = "a date and time from 0001-01-01 to 9999-12-31"

# What fastavro's readers can decode each logical type's wire value into. The writer takes any int
# that fits the base type, but the reader builds a Python date, datetime or time from it: a value
# outside those is written, then fails every reader (the router would dead-letter the record).
# Keyed as fastavro.write.LOGICAL_WRITERS is: "<base type>-<logical type>".
_DECODABLE: dict[str, tuple[int, int, str]] = {
    "int-date": (1 - _EPOCH_DAY, dt.date.max.toordinal() - _EPOCH_DAY, "a date from 0001-01-01 to 9999-12-31"),
    "long-timestamp-millis": ((_FIRST - _EPOCH) // _MS, (_LAST - _EPOCH) // _MS, _INSTANTS),
    "long-local-timestamp-millis": ((_FIRST - _EPOCH) // _MS, (_LAST - _EPOCH) // _MS, _LOCAL),
    "long-timestamp-micros": ((_FIRST - _EPOCH) // _US, (_LAST - _EPOCH) // _US, _INSTANTS),
    "long-local-timestamp-micros": ((_FIRST - _EPOCH) // _US, (_LAST - _EPOCH) // _US, _LOCAL),
    "int-time-millis": (0, _DAY_MS - 1, "a time of day (0 to 86399999 ms)"),
    "long-time-micros": (0, _DAY_MS * 1000 - 1, "a time of day (0 to 86399999999 us)"),
}


def _unencodable(value: object) -> str | None:
    """A string in ``value`` (nested, map keys too) that UTF-8 cannot encode, as Avro must: a lone
    surrogate, which JSON's ``\\ud800`` escapes and Python's str both allow."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value
        return None
    if isinstance(value, Mapping):
        return next((s for item in value.items() for s in map(_unencodable, item) if s is not None), None)
    if isinstance(value, list | tuple):
        return next((s for s in map(_unencodable, value) if s is not None), None)
    return None


def _union_member(value: object, members: list[Any]) -> Any:
    """The member of a union the writer encodes ``value`` with: the first one it validates against."""
    if value is None:
        return None
    candidates = [m for m in members if m != "null"]
    if len(candidates) == 1:
        return candidates[0]
    for member in candidates:
        try:
            if fastavro_validate(value, member, raise_errors=False):
                return member
        except (fastavro.schema.SchemaParseException, ValueError, TypeError, AttributeError):
            # A reference to a named type, or a logical type the value does not fit: not this member.
            continue
    return None


def _undecodable(value: object, avro_type: Any) -> str | None:
    """Why the wire form of ``value`` (already valid for ``avro_type``) could not be decoded, or None."""
    if isinstance(avro_type, list):
        member = _union_member(value, avro_type)
        return None if member is None else _undecodable(value, member)
    if not isinstance(avro_type, dict):
        return None
    kind = avro_type.get("type")
    logical = f"{kind}-{avro_type.get('logicalType')}"
    if logical in _DECODABLE:
        low, high, what = _DECODABLE[logical]
        try:
            # The writer's own conversion (a date, datetime or ISO string to the int it writes).
            wire = LOGICAL_WRITERS[logical](value, avro_type)
        except (OverflowError, ValueError, TypeError):
            return f"value {value!r} cannot be written as {what}"
        if isinstance(wire, int) and not low <= wire <= high:
            return f"value {value!r} is out of range: it must be {what} ({low} to {high} as a number)"
        return None
    if kind == "array" and isinstance(value, list | tuple):
        return next((p for item in value if (p := _undecodable(item, avro_type["items"])) is not None), None)
    if kind == "map" and isinstance(value, Mapping):
        return next((p for v in value.values() if (p := _undecodable(v, avro_type["values"])) is not None), None)
    if kind == "record" and isinstance(value, Mapping):
        inner = ((f["type"], value[f["name"]]) for f in avro_type["fields"] if f["name"] in value)
        return next((p for t, v in inner if (p := _undecodable(v, t)) is not None), None)
    return None


@dataclass(frozen=True, slots=True)
class AvroSchema:
    """The schema text as registered, and the parsed form fastavro encodes and decodes with."""

    text: str
    parsed: Any = field(repr=False, compare=False)
    field_defs: list[dict[str, Any]] = field(repr=False, compare=False)
    field_types: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> AvroSchema:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaParseError(f"not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("type") != "record":
            raise SchemaParseError("a data class schema must be an Avro record")
        try:
            # The registry checks compatibility with the Apache Avro package, so the schema must parse
            # there as well as in fastavro, which encodes and decodes on the hot path.
            avro.schema.parse(text)
            parsed = fastavro.parse_schema(document)
        except (
            avro.errors.AvroException,
            fastavro.schema.SchemaParseException,
            ValueError,
            TypeError,
        ) as exc:
            raise SchemaParseError(str(exc)) from exc
        compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        fields = document["fields"]
        return cls(compact, parsed, fields, {f["name"]: f["type"] for f in fields})

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self.field_types)

    def validate(self, record: object) -> None:
        """Raises RecordInvalid naming the first offending field."""
        if not isinstance(record, dict):
            raise RecordInvalid(None, f"a record must be a mapping of field names, not {type(record).__name__}")
        unknown = sorted(set(record) - set(self.field_types))
        if unknown:
            raise RecordInvalid(unknown[0], f"field {unknown[0]!r} is not in the schema")
        try:
            fastavro_validate(record, self.parsed, raise_errors=True)
        except (fastavro.validation.ValidationError, ValueError, TypeError, AttributeError) as exc:
            raise find_invalid_field(record, self.field_defs) from exc
        self._check_wire_values(record)

    def _check_wire_values(self, record: Mapping[str, Any]) -> None:
        """What fastavro's validation lets through but the serializer or a reader then fails on:
        strings UTF-8 cannot encode, and dates and times no reader can decode."""
        for name, avro_type in self.field_types.items():
            if name not in record:
                continue
            value = record[name]
            bad = _unencodable(value)
            if bad is not None:
                raise RecordInvalid(
                    name,
                    f"text {bad!r} is not valid Unicode (it holds a lone UTF-16 surrogate) and cannot be "
                    "encoded as UTF-8",
                )
            problem = _undecodable(value, avro_type)
            if problem is not None:
                raise RecordInvalid(name, problem)
