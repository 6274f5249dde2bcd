"""Validating a record's Avro bytes without decoding them into Python values.

The router must refuse every record that does not fit its schema before it forwards a byte of it, and
it needs, per record, only where each field starts and ends (to splice a projection) and how many
fields are filled (the quality score's completeness). Decoding with fastavro builds every value (a
``date``, a ``datetime``, a ``str`` per field) and reads the body one byte at a time through a file
object: 9-12 µs for the bench class. A ``Walker`` steps over the bytes with plain indexing and builds
only what it checks: about half of that.

It takes only flat records, the shape of every catalogue schema: fields of the primitive types,
enums, fixed, unions of these, and the ``date`` and ``timestamp-millis``/``-micros`` logical types.
For any other schema ``Walker.compile`` returns None and the caller decodes with fastavro.

It is at least as strict as fastavro's decoder, which the subscribers use: whatever it accepts,
fastavro decodes in full with no byte left over (``tests/unit/test_walk.py`` checks this over random
records of every catalogue schema and over random corruptions of them). It is stricter where fastavro
is lenient and the Avro specification is not: a negative length or index, a varint longer than its
type allows, an ``int`` outside 32 bits, and a string or bytes field that runs past the record's end
(fastavro returns it short).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sharebus_core.errors import SharebusError


class WalkError(SharebusError, ValueError):
    """The bytes are not a record of the schema; the message says where and why."""


# Step kinds. Every integer-coded value (int, long, enum index, date, timestamp) is one kind with its
# range, and every fixed-width one (float, double, boolean, fixed) another: fewer tests per field.
_STRING = 0
_VARINT = 1
_WIDTH = 2
_NULL = 3
_UNION = 4
_BYTES = 5

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# What fastavro turns a date into: ``date.fromordinal(days + 719163)``, defined from 1 January of year 1
# to 31 December 9999.
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAYS_MIN = dt.date.min.toordinal() - _EPOCH.date().toordinal()
_DAYS_MAX = dt.date.max.toordinal() - _EPOCH.date().toordinal()
# ... and a timestamp: ``epoch + timedelta(microseconds=...)``, within the years 1 to 9999 too.
_MICROS_MIN = (dt.datetime.min.replace(tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)
_MICROS_MAX = (dt.datetime.max.replace(tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)


class Step(NamedTuple):
    """One value to step over. ``_VARINT``: its range and its longest encoding in bytes (``size``);
    ``_WIDTH``: its width (``size``); ``_UNION``: its branches."""

    kind: int
    low: int = 0
    high: int = 0
    size: int = 0
    branches: tuple[Step, ...] = ()


def _ints(low: int, high: int, max_bytes: int) -> Step:
    return Step(_VARINT, low, high, max_bytes)


_INT = _ints(_INT_MIN, _INT_MAX, 5)
_LONG = _ints(_LONG_MIN, _LONG_MAX, 10)
_PRIMITIVES = {
    "string": Step(_STRING),
    "long": _LONG,
    "int": _INT,
    "double": Step(_WIDTH, size=8),
    "null": Step(_NULL),
    # fastavro, like Avro's Java decoder, reads any byte other than 0 as true.
    "boolean": Step(_WIDTH, size=1),
    "float": Step(_WIDTH, size=4),
    "bytes": Step(_BYTES),
}


class Walked(NamedTuple):
    """Where each field starts, then where the record ends (``len(bounds) == fields + 1``); and how many
    fields are filled, as ``sharebus_rules.quality.is_filled`` counts them."""

    bounds: list[int]
    filled: int


def _step(schema: Any) -> Step | None:
    """How to step over a value of ``schema``; None when the walker does not take it."""
    if isinstance(schema, str):
        return _PRIMITIVES.get(schema)
    if isinstance(schema, list):
        branches = [_step(branch) for branch in schema]
        if not branches or any(b is None or b.kind == _UNION for b in branches):
            return None
        return Step(_UNION, 0, len(branches), 0, tuple(b for b in branches if b is not None))
    if not isinstance(schema, Mapping):
        return None
    return _complex(schema)


def _complex(schema: Mapping[str, Any]) -> Step | None:
    kind, logical = schema.get("type"), schema.get("logicalType")
    if logical is not None:
        if kind == "int" and logical == "date":
            return _ints(_DAYS_MIN, _DAYS_MAX, 5)
        if kind == "long" and logical == "timestamp-millis":
            return _ints(-(-_MICROS_MIN // 1000), _MICROS_MAX // 1000, 10)
        if kind == "long" and logical == "timestamp-micros":
            return _ints(_MICROS_MIN, _MICROS_MAX, 10)
        # Another logical type decodes to a value the walker does not check (a decimal, a uuid, a time).
        return None
    if kind == "enum":
        symbols = schema.get("symbols")
        return _ints(0, len(symbols) - 1, 5) if isinstance(symbols, list) and symbols else None
    if kind == "fixed":
        size = schema.get("size")
        return Step(_WIDTH, size=size) if isinstance(size, int) and size >= 0 else None
    if isinstance(kind, str) and len(schema) == 1:
        return _PRIMITIVES.get(kind)
    return None


def read_long(buf: bytes, pos: int, max_bytes: int = 10) -> tuple[int, int]:
    """A zig-zag varint at ``pos`` of at most ``max_bytes`` bytes: (its value, the position after it)."""
    start = pos
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if pos - start >= max_bytes:
            raise WalkError(f"a varint at byte {start} is longer than {max_bytes} bytes")


class Walker:
    """Steps over one record of a flat schema; built once per writer schema (``compile``)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = tuple(steps)

    @classmethod
    def compile(cls, schema: Any) -> Walker | None:
        """A walker for ``schema`` (fastavro's parsed form or the JSON document), or None if it takes more."""
        if not isinstance(schema, Mapping) or schema.get("type") != "record":
            return None
        fields = schema.get("fields")
        if not isinstance(fields, list):
            return None
        steps = [_step(f.get("type")) if isinstance(f, Mapping) else None for f in fields]
        if any(s is None for s in steps):
            return None
        return cls([s for s in steps if s is not None])

    def walk(self, payload: bytes) -> Walked:
        """Raises ``WalkError`` when ``payload`` is not exactly one record of the schema."""
        try:
            bounds, filled, pos = self._walk(payload)
        except IndexError:
            raise WalkError(f"the record ends early: {len(payload)} bytes are not all its fields") from None
        if pos < len(payload):
            raise WalkError(f"{len(payload) - pos} trailing byte(s) after the record")
        if pos > len(payload):
            raise WalkError(f"the last field runs {pos - len(payload)} byte(s) past the record's end")
        return Walked(bounds, filled)

    def _walk(self, buf: bytes) -> tuple[list[int], int, int]:
        bounds = [0]
        filled = pos = 0
        for step in self._steps:
            kind, low, high, size, branches = step
            if kind == _UNION:
                index, pos = read_long(buf, pos, 10)
                if not 0 <= index < high:
                    raise WalkError(f"union branch {index} at byte {pos} is not one of the {high} branches")
                kind, low, high, size, branches = branches[index]
            if kind in (_STRING, _BYTES):
                length = buf[pos]
                if length < 0x80:
                    pos += 1
                    length = (length >> 1) ^ -(length & 1)
                else:
                    length, pos = read_long(buf, pos, 10)
                end = pos + length
                if length < 0 or end > len(buf):
                    raise WalkError(f"a value of {length} bytes at byte {pos} does not fit the record")
                if kind == _BYTES:
                    filled += length > 0
                else:
                    try:
                        text = buf[pos:end].decode()
                    except UnicodeDecodeError as exc:
                        raise WalkError(f"the string at byte {pos} is not UTF-8: {exc.reason}") from None
                    filled += not (text == "" or text.isspace())
                pos = end
            elif kind == _VARINT:
                value = buf[pos]
                if value < 0x80:
                    pos += 1
                    value = (value >> 1) ^ -(value & 1)
                else:
                    value, pos = read_long(buf, pos, size)
                if not low <= value <= high:
                    raise WalkError(f"{value} at byte {pos} is outside the range of its type")
                filled += 1
            elif kind == _WIDTH:
                pos += size
                filled += size > 0
            bounds.append(pos)
        return bounds, filled, pos
