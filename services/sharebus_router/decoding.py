"""A record's body checked against its writer schema: walked (bounds only) where that suffices, else decoded.

Every record is checked in full before anything of it is forwarded. Most need no value decoded: a
class whose quality rules are only completeness (most classes) and a grant that forwards the
published bytes or splices a projection out of them (``projector.py``) need where each field starts
and how many are filled, which ``sharebus_rules.walk.Walker`` finds in about half of fastavro's time.
The value is decoded only when something asks for it (a masked field, a projection that is encoded
again, a quality rule), and at most once.
"""

from __future__ import annotations

import io
from typing import Any, cast

import fastavro

from sharebus_router.dead_letters import BadRecord, DeadLetterReason
from sharebus_router.schema_cache import WriterSchema
from sharebus_rules.walk import Walker, WalkError


def decode(writer: WriterSchema, body: bytes | memoryview, reader: Any = None) -> dict[str, Any]:
    """Decodes a body fully, so that a truncated or padded record is caught here, not downstream.

    ``reader``: the class's schema when the record was written with another version of it (Avro's
    schema resolution fills in the fields added since with their defaults); None when it is the same.
    """
    stream = io.BytesIO(body)
    try:
        record = cast(dict[str, Any], fastavro.schemaless_reader(stream, writer.parsed, reader))
    except Exception as exc:
        as_class = "" if reader is None else " as the class's current schema"
        raise BadRecord(
            DeadLetterReason.SCHEMA_INVALID, f"cannot decode with schema {writer.schema_id}{as_class}: {exc}"
        ) from exc
    if stream.tell() != len(body):
        raise BadRecord(
            DeadLetterReason.SCHEMA_INVALID,
            f"{len(body) - stream.tell()} trailing byte(s) after a record of schema {writer.schema_id}",
        )
    return record


class Decoded:
    """A checked record: its writer schema and body, its fields' bounds when it was walked, its value.

    ``record`` decodes on first use when the record was only walked; a record the walker accepts
    always decodes (``tests/unit/test_walk.py``), and should one not, it raises ``BadRecord`` before
    anything of it is sent (``RecordHandler._plan`` renders every delivery first).
    """

    __slots__ = ("_reader", "_record", "body", "bounds", "filled", "writer")

    def __init__(
        self,
        writer: WriterSchema,
        body: bytes,
        reader: Any = None,
        record: dict[str, Any] | None = None,
        bounds: list[int] | None = None,
        filled: int = 0,
    ) -> None:
        self.writer = writer
        self.body = body
        self._reader = reader
        self._record = record
        # Where each field of ``body`` starts, then its end; None when it was decoded, not walked.
        self.bounds = bounds
        self.filled = filled

    @property
    def record(self) -> dict[str, Any]:
        if self._record is None:
            self._record = decode(self.writer, self.body, self._reader)
        return self._record


def decoded(writer: WriterSchema, body: bytes, reader: Any = None) -> Decoded:
    """Decoded with fastavro at once: for whoever needs the value anyway (a quality rule, another version)."""
    return Decoded(writer, body, reader, decode(writer, body, reader))


def walked(writer: WriterSchema, walker: Walker, body: bytes) -> Decoded:
    """Walked only; raises ``BadRecord`` as ``decode`` does for a body that is not a record of ``writer``."""
    try:
        bounds, filled = walker.walk(body)
    except WalkError as exc:
        raise BadRecord(
            DeadLetterReason.SCHEMA_INVALID, f"cannot decode with schema {writer.schema_id}: {exc}"
        ) from exc
    return Decoded(writer, body, None, None, bounds, filled)


class Walkers:
    """Each writer schema's walker (None: the walker does not take that schema), made once per schema id."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._walkers: dict[int, Walker | None] = {}
        self.max_entries = max_entries

    def of(self, writer: WriterSchema) -> Walker | None:
        try:
            return self._walkers[writer.schema_id]
        except KeyError:
            pass
        if len(self._walkers) >= self.max_entries:
            self._walkers.clear()
        walker = self._walkers[writer.schema_id] = Walker.compile(writer.parsed)
        return walker
