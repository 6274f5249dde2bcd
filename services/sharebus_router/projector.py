"""What a target receives of a record: the published bytes, or its projection, spliced where proven the same.

Splicing (``sharebus_rules.splice``) copies the granted fields' bytes out of the published record
instead of encoding the projection again with fastavro (about 7 µs a record). It is used only when
the record's writer schema derives exactly the projection's schema (the same fields, types and
names; ``derive_schema``); a record written with another version of the class's schema, or a schema
the splicer cannot walk, is encoded as before. ``tests/unit/test_splice.py`` proves the bytes equal
to fastavro's over random records of every catalogue schema.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro

from sharebus_core.wire import frame
from sharebus_router.decoding import Decoded
from sharebus_router.routes import Projection, Target
from sharebus_router.schema_cache import WriterSchema
from sharebus_rules.projection import derive_schema, project
from sharebus_rules.splice import Splicer

# (writer schema id, projection schema id) pairs remembered; beyond it the table starts again.
MAX_SPLICERS = 10_000


class Projector:
    def __init__(self) -> None:
        self._splicers: dict[tuple[int, int], Splicer | None] = {}

    def render(self, target: Target, checked: Decoded, value: bytes | None) -> bytes | None:
        """What ``target`` receives of a record checked in full (``decoding.py``): its value is decoded only
        when a masked field's text or an encoding of the projection needs it."""
        projection = target.projection
        if projection is None:
            return value
        splicer = self._splicer(checked.writer, projection)
        if splicer is not None:
            record = checked.record if splicer.masks else None
            return frame(projection.schema_id, splicer.project(checked.body, record, checked.bounds))
        return encoded(projection, checked.record)

    def _splicer(self, writer: WriterSchema, projection: Projection) -> Splicer | None:
        key = (writer.schema_id, projection.schema_id)
        try:
            return self._splicers[key]
        except KeyError:
            pass
        if len(self._splicers) >= MAX_SPLICERS:
            self._splicers.clear()
        splicer = self._splicers[key] = _build(writer, projection)
        return splicer


def _build(writer: WriterSchema, projection: Projection) -> Splicer | None:
    if writer.document is None or projection.document is None:
        return None
    try:
        if derive_schema(writer.document, projection.fields, projection.masked) != projection.document:
            return None
        return Splicer(writer.document, projection.fields, projection.masked)
    except (KeyError, TypeError, ValueError):
        # Whatever the splicer cannot take (SpliceUnsupported, a schema shape it does not know) is encoded.
        return None


def encode(parsed: Any, record: dict[str, Any]) -> bytes:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, parsed, record)
    return stream.getvalue()


def encoded(projection: Projection, record: dict[str, Any]) -> bytes:
    return frame(projection.schema_id, encode(projection.parsed, project(record, projection.fields, projection.masked)))


def render(target: Target, record: dict[str, Any], value: bytes | None) -> bytes | None:
    """What ``target`` receives of a record, encoded (releases and backfills, which keep no writer schema)."""
    return value if target.projection is None else encoded(target.projection, record)
