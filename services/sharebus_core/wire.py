"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body."""

from __future__ import annotations

import struct

from sharebus_core.errors import SharebusError

MAGIC_BYTE = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">bI")


class WireFormatError(SharebusError, ValueError):
    """The bytes are not a Confluent-framed record."""


def frame(schema_id: int, body: bytes) -> bytes:
    return _HEADER.pack(MAGIC_BYTE, schema_id) + body


def unframe(raw: bytes | None) -> tuple[int, memoryview]:
    """Splits framed bytes into (schema id, body) without copying the body."""
    if raw is None:
        raise WireFormatError("the record has no value (null or tombstone)")
    if len(raw) < HEADER_SIZE:
        raise WireFormatError(f"the record is {len(raw)} bytes, shorter than the 5-byte wire header")
    magic, schema_id = _HEADER.unpack_from(raw)
    if magic != MAGIC_BYTE:
        raise WireFormatError(f"the record starts with byte {magic}, not the wire format's magic byte 0")
    return schema_id, memoryview(raw)[HEADER_SIZE:]
