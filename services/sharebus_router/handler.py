"""The per-record path: check the bytes, decode against the writer schema, forward or deny, count.

Kafka-free: the caller passes a ``send`` coroutine, so the same code runs under Faust and in
unit tests.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from sharebus_core import headers as h
from sharebus_core.headers import HeaderList
from sharebus_core.wire import WireFormatError, unframe
from sharebus_router import audit_facts
from sharebus_router.bus_headers import RawHeader, bus_headers
from sharebus_router.dead_letters import BadRecord, DeadLetterReason, bounded, dead_letter_headers
from sharebus_router.decoding import Decoded, Walkers, decode, decoded, walked
from sharebus_router.delivery import Planned, Send, check_size, deliver, plan
from sharebus_router.metrics import RouterMetrics, Tally
from sharebus_router.projector import Projector
from sharebus_router.quality_gate import QualityGate, QualityRejected
from sharebus_router.reader_schemas import MAX_READERS, ReaderSchemas
from sharebus_router.routes import ClassRoute, Projection, Target
from sharebus_router.schema_cache import SchemaCache, UnknownSchemaId, WriterSchema
from sharebus_rules.quality import Verdict

log = logging.getLogger(__name__)
# (class code, consumer) -> every field of the class as it is now, none masked (``RouteBuilder.whole``).
WholeProjection = Callable[[str, str], Awaitable[Projection]]


def origin_headers(topic: str, partition: int, offset: int, key: bytes | None) -> HeaderList:
    """Where a held record came from (its key too: on the held topic the key is the class code)."""
    origin = {"topic": topic, "partition": partition, "offset": offset, "key": key.hex() if key is not None else None}
    return [(h.ORIGIN, json.dumps(origin, separators=(",", ":")).encode())]


# The largest message the router sends; the producer is configured with the same (RouterSettings).
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
# Room kept, when a periodic record is held, for what its release adds: the consumer, mode and grant
# headers and the batch's id, window, count and index (a few hundred bytes in all).
RELEASE_HEADER_RESERVE = 1024


class RecordHandler:
    def __init__(
        self,
        routes: Mapping[str, ClassRoute],
        schemas: SchemaCache,
        metrics: RouterMetrics,
        dead_letter_topic: str,
        send: Send,
        known_classes: Collection[str],
        held_topic: str = "",
        clock: Callable[[], float] = time.time,
        last_seen: dict[str, float] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        quality: QualityGate | None = None,
        whole: WholeProjection | None = None,
    ) -> None:
        # None: a record whose writer schema holds a field the class no longer has reaches nobody.
        self.whole = whole
        # None: no quality checks at all (benchmarks of the bare path; tests of other concerns).
        self.quality = quality
        self.known_classes = known_classes
        self.held_topic = held_topic
        self.clock = clock
        # class code -> router-clock time of its latest valid record (the freshness gauges read it).
        self.last_seen: dict[str, float] = last_seen if last_seen is not None else {}
        self.routes = routes
        self.schemas = schemas
        self.metrics = metrics
        self.dead_letter_topic = dead_letter_topic
        self.send = send
        self.max_message_bytes = max_message_bytes
        self.projector = Projector()
        self.walkers = Walkers(MAX_READERS)
        self.readers = ReaderSchemas()
        # Counts of the records handled since the caller last flushed it (the data path: once per batch).
        self.tally = Tally()

    def bus_headers(self, headers: Iterable[RawHeader], route: ClassRoute) -> HeaderList:
        """The headers the record travels on with: the bus's own, never a publisher's copies (bus_headers)."""
        return bus_headers(headers, route.data_class, route.provider, self.known_classes)

    def check_size(
        self, key: bytes | None, value: bytes | None, headers: HeaderList, what: str, reserve: int = 0
    ) -> None:
        check_size(self.max_message_bytes, key, value, headers, what, reserve)

    async def decoded(self, value: bytes | None, route: ClassRoute) -> tuple[WriterSchema, memoryview, dict[str, Any]]:
        """The record's writer schema, its Avro body and its value; raises ``BadRecord``."""
        writer, body = await self.written(value, route)
        return writer, body, decode(writer, body, self.readers.reader(writer, route))

    async def checked(self, value: bytes | None, route: ClassRoute) -> Decoded:
        """The record checked in full: walked when nothing needs its value now, else decoded (decoding.py)."""
        writer, view = await self.written(value, route)
        body = bytes(view)
        reader = self.readers.reader(writer, route)
        # Walked only against the class's own schema (route.schema), whose fields completeness counts.
        walkable = reader is None and route.schema is not None
        if walkable and (self.quality is None or not self.quality.reads_values(route.data_class)):
            walker = self.walkers.of(writer)
            if walker is not None:
                return walked(writer, walker, body)
        return decoded(writer, body, reader)

    async def written(self, value: bytes | None, route: ClassRoute) -> tuple[WriterSchema, memoryview]:
        """The record's writer schema, checked to be one of the class's, and its Avro body; raises ``BadRecord``."""
        try:
            schema_id, body = unframe(value)
        except WireFormatError as exc:
            raise BadRecord(DeadLetterReason.NOT_WIRE_FORMAT, str(exc)) from exc
        try:
            writer = self.schemas.cached(schema_id) or await self.schemas.get(schema_id)
            if route.subject not in writer.subjects:
                # Only on this error path (and at most once per id and interval, see SchemaCache): the id
                # may have been registered for this class since it was cached.
                writer = await self.schemas.recheck(schema_id, route.subject)
        except UnknownSchemaId as unknown:
            # Not ``exc`` again: compiled (sharebus_core.native), one name takes the type of its first except.
            raise BadRecord(DeadLetterReason.UNKNOWN_SCHEMA_ID, str(unknown)) from unknown
        if route.subject not in writer.subjects:
            raise BadRecord(
                DeadLetterReason.SCHEMA_MISMATCH,
                f"schema id {schema_id} is registered for {sorted(writer.subjects)[:5]}, not for data class "
                f"{route.data_class}",
            )
        return writer, body

    async def fitted(self, route: ClassRoute, writer: WriterSchema, target: Target) -> Target:
        """``target`` as it may receive a record of ``writer``. A target allowed every field gets the published
        bytes, but not those of a writer schema holding a field the class no longer has: no grant names
        that field, so it receives the record as the class's schema has it (read as that, see ``ReaderSchemas``).
        Raises ``BadRecord`` when it cannot (no way to register that schema here)."""
        if target.projection is not None or not self.readers.holds_more(writer, route):
            return target
        if self.whole is None:
            raise BadRecord(
                DeadLetterReason.SCHEMA_MISMATCH,
                f"schema {writer.schema_id} has fields that data class {route.data_class} no longer has",
            )
        return dataclasses.replace(target, projection=await self.whole(route.data_class, target.consumer))

    def judge(self, route: ClassRoute, checked: Decoded, headers: HeaderList) -> Verdict | None:
        """The record's quality verdict; raises ``QualityRejected`` when a failed rule rejects it."""
        if self.quality is None:
            return None
        if checked.bounds is not None:
            # Walked: the class has no rule that reads a value (``checked``), only completeness.
            return self.quality.completeness(route.data_class, checked.filled)
        verdict = self.quality.judge(route.data_class, checked.record)
        if verdict.rejected_by is not None:
            raise self.quality.rejection(route.data_class, verdict, headers)
        return verdict

    def rejudge(self, route: ClassRoute, record: dict[str, Any]) -> Verdict | None:
        """The verdict of a record routed before (released from the held topic, or backfilled): not counted
        again, and never a rejection here (it was judged when first read; see release.py and backfill.py)."""
        return self.quality.judge(route.data_class, record) if self.quality is not None else None

    async def _prepare(
        self,
        route: ClassRoute,
        offset: tuple[str, int, int],
        key: bytes | None,
        value: bytes | None,
        raw: Iterable[RawHeader],
    ) -> tuple[HeaderList, list[Planned], Verdict | None]:
        """Everything about a record that can be wrong, found before anything is sent; raises BadRecord."""
        headers = self.bus_headers(raw, route)
        # Every record is checked in full, also when it passes unchanged: a record that does not fit
        # its schema must reach the dead-letter topic, not a subscriber.
        checked = await self.checked(value, route)
        verdict = self.judge(route, checked, headers)
        if route.held:
            # The flag header is added when the window is released (release.py): the held copy goes
            # through bus_headers again there, which would take a header already set for a publisher's.
            held = [*headers, *origin_headers(*offset, key)]
            self.check_size(route.data_class.encode(), value, held, "the held record", RELEASE_HEADER_RESERVE)
            return held, [], verdict
        writer = checked.writer
        # Checked once per record (a dict lookup), not per target: this is the hot path.
        targets = (
            [await self.fitted(route, writer, t) for t in route.targets]
            if self.readers.holds_more(writer, route)
            else route.targets
        )
        now_s = self.clock()
        planned = plan(self.projector, self.max_message_bytes, now_s, targets, key, value, checked, headers, verdict)
        return headers, planned, verdict

    async def handle(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[RawHeader],
    ) -> dict[str, Any] | None:
        """Routes one record; returns the fact of its decisions for the audit (None for a dead letter).

        No record can stop the stream: whatever is wrong with one ends in the dead-letter topic with its
        reason. Only a failure to send (Kafka's, not the record's) escapes.
        """
        raw = list(headers)
        route = self.routes.get(topic)
        if route is None:
            bad = BadRecord(DeadLetterReason.UNKNOWN_DATA_CLASS, f"no data class has topic {topic}")
            await self.dead_letter(topic, partition, offset, key, value, raw, "", bad)
            return None
        # Where live delivery stands in this partition, set before any await: a target installed while
        # this record is in flight is not applied to it, and its hand-over point lies past it.
        route.next_offsets[partition] = offset + 1
        try:
            out_headers, planned, verdict = await self._prepare(route, (topic, partition, offset), key, value, raw)
        except QualityRejected as rejected:
            await self.dead_letter(topic, partition, offset, key, value, raw, route.data_class, rejected)
            return self._rejected(route, (topic, partition, offset), key, rejected)
        except BadRecord as bad:
            await self.dead_letter(topic, partition, offset, key, value, raw, route.data_class, bad)
            return None
        except Exception as exc:
            # A record the code did not foresee must not end the agent (and stall every class behind it).
            log.exception("record %s[%d]@%d could not be processed; dead-lettered", topic, partition, offset)
            unforeseen = BadRecord(DeadLetterReason.UNPROCESSABLE, f"{type(exc).__name__}: {exc}")
            await self.dead_letter(topic, partition, offset, key, value, raw, route.data_class, unforeseen)
            return None
        self.tally.add(route.received)
        self.last_seen[route.data_class] = self.clock()
        if self.quality is not None and verdict is not None:
            self.quality.count(route.data_class, verdict)
        if route.held:
            # Periodic: held until its window is released (sharebus_router.holding). Keyed by class so
            # that a class's records stay in order in one partition, between its release markers.
            await self.send(self.held_topic, route.data_class.encode(), value, out_headers)
            return None
        return await deliver(self.send, self.tally, route, topic, partition, offset, key, out_headers, planned, verdict)

    def _rejected(
        self, route: ClassRoute, offset: tuple[str, int, int], key: bytes | None, rejected: QualityRejected
    ) -> dict[str, Any]:
        """The audit fact of a record rejected for quality: one denial for nobody in particular, so the
        audit trail alone tells how many records of a class failed (contract A, docs/quality.md)."""
        if self.quality is not None:
            self.quality.count(route.data_class, rejected.verdict)
        denial = audit_facts.decision(None, None, False, rejected.reason_text)
        fact = audit_facts.record_fact(
            route.provider, route.data_class, route.mode, *offset, key, rejected.headers, [denial], route.level
        )
        fact["quality"] = rejected.verdict.as_fact()
        return fact

    async def unreadable(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, detail: str
    ) -> None:
        """Dead-letters a record whose headers cannot be read (``sharebus_core.kafka.message_headers``): no
        subscriber receives it, and the letter carries none of them."""
        route = self.routes.get(topic)
        if route is not None:
            route.next_offsets[partition] = offset + 1  # as ``handle`` does: the hand-over point lies past it
        bad = BadRecord(DeadLetterReason.BAD_HEADER, detail)
        await self.dead_letter(topic, partition, offset, key, value, [], route.data_class if route else "", bad)

    async def dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[RawHeader],
        data_class: str,
        bad: BadRecord,
        send: Send | None = None,
    ) -> None:
        """``send``: the caller's own producer (a release's, committed by Faust), else the data path's."""
        dl_headers = dead_letter_headers(headers, bad.reason_text, bad.detail, topic, partition, offset, data_class)
        dl_key, dl_value, dl_headers = bounded(key, value, dl_headers, self.max_message_bytes)
        await (send or self.send)(self.dead_letter_topic, dl_key, dl_value, dl_headers)
        self.metrics.dead_letter(data_class or "unknown", bad.reason)
