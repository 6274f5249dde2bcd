"""The per-record path: check the bytes, decode against the writer schema, forward or deny, count.

Kafka-free: the caller passes a ``send`` coroutine, so the same code runs under Faust and in
unit tests.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, cast

import fastavro

from sharebus_core import headers as h
from sharebus_core.headers import HeaderList
from sharebus_core.wire import WireFormatError, frame, unframe
from sharebus_router import audit_facts
from sharebus_router.dead_letters import BadRecord, DeadLetterReason, dead_letter_headers
from sharebus_router.metrics import RouterMetrics
from sharebus_router.routes import ClassRoute, Target
from sharebus_router.schema_cache import SchemaCache, UnknownSchemaId, WriterSchema
from sharebus_rules.projection import project

Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]


def decode(writer: WriterSchema, body: memoryview) -> dict[str, Any]:
    """Decodes a body fully, so that a truncated or padded record is caught here, not downstream."""
    stream = io.BytesIO(body)
    try:
        record = cast(dict[str, Any], fastavro.schemaless_reader(stream, writer.parsed, None))
    except Exception as exc:
        raise BadRecord(
            DeadLetterReason.SCHEMA_INVALID, f"cannot decode with schema {writer.schema_id}: {exc}"
        ) from exc
    if stream.tell() != len(body):
        raise BadRecord(
            DeadLetterReason.SCHEMA_INVALID,
            f"{len(body) - stream.tell()} trailing byte(s) after a record of schema {writer.schema_id}",
        )
    return record


def encode(parsed: Any, record: dict[str, Any]) -> bytes:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, parsed, record)
    return stream.getvalue()


def origin_headers(topic: str, partition: int, offset: int, key: bytes | None) -> HeaderList:
    """Where a held record came from (its key too: on the held topic the key is the class code)."""
    origin = {"topic": topic, "partition": partition, "offset": offset, "key": key.hex() if key is not None else None}
    return [(h.ORIGIN, json.dumps(origin, separators=(",", ":")).encode())]


def render(target: Target, record: dict[str, Any], value: bytes | None) -> bytes | None:
    """What ``target`` receives of a record: the published bytes, or its projection in the consumer's schema."""
    projection = target.projection
    if projection is None:
        return value
    return frame(projection.schema_id, encode(projection.parsed, project(record, projection.fields, projection.masked)))


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
    ) -> None:
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

    def _check_label(self, headers: HeaderList, route: ClassRoute) -> None:
        """A record labelled with another class than its topic's was published to the wrong place."""
        for name, raw in headers:
            if name == h.DATA_CLASS:
                claimed = raw.decode("utf-8", "replace")
                if claimed == route.data_class:
                    return
                if claimed not in self.known_classes:
                    raise BadRecord(
                        DeadLetterReason.UNKNOWN_DATA_CLASS,
                        f"the record is labelled {claimed!r}, which is not in the catalogue",
                    )
                raise BadRecord(
                    DeadLetterReason.CLASS_MISMATCH,
                    f"the record is labelled {claimed} but was published to {route.data_class}'s topic",
                )

    async def decode_value(self, value: bytes | None, route: ClassRoute) -> dict[str, Any]:
        try:
            schema_id, body = unframe(value)
        except WireFormatError as exc:
            raise BadRecord(DeadLetterReason.NOT_WIRE_FORMAT, str(exc)) from exc
        writer = self.schemas.cached(schema_id)
        if writer is None:
            try:
                writer = await self.schemas.get(schema_id)
            except UnknownSchemaId as exc:
                raise BadRecord(DeadLetterReason.UNKNOWN_SCHEMA_ID, str(exc)) from exc
        if route.subject not in writer.subjects:
            # Only on this error path: the id may have been registered for this class since it was cached.
            writer = await self.schemas.refresh(schema_id)
        if route.subject not in writer.subjects:
            raise BadRecord(
                DeadLetterReason.SCHEMA_MISMATCH,
                f"schema id {schema_id} is registered for {sorted(writer.subjects)}, not for data class "
                f"{route.data_class}",
            )
        return decode(writer, body)

    async def handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, headers: HeaderList
    ) -> dict[str, Any] | None:
        """Routes one record; returns the fact of its decisions for the audit (None for a dead letter)."""
        route = self.routes.get(topic)
        if route is None:
            bad = BadRecord(DeadLetterReason.UNKNOWN_DATA_CLASS, f"no data class has topic {topic}")
            await self.dead_letter(topic, partition, offset, key, value, headers, "", bad)
            return None
        # Where live delivery stands in this partition, set before any await: a target installed while
        # this record is in flight is not applied to it, and its hand-over point lies past it.
        route.next_offsets[partition] = offset + 1
        try:
            self._check_label(headers, route)
            # Every record is decoded, also when it passes unchanged: a record that does not fit its
            # schema must reach the dead-letter topic, not a subscriber.
            record = await self.decode_value(value, route)
        except BadRecord as bad:
            await self.dead_letter(topic, partition, offset, key, value, headers, route.data_class, bad)
            return None
        route.received.inc()
        now_s = self.last_seen[route.data_class] = self.clock()
        if route.held:
            # Periodic: held until its window is released (sharebus_router.holding). Keyed by class so
            # that a class's records stay in order in one partition, between its release markers.
            origin = origin_headers(topic, partition, offset, key)
            await self.send(self.held_topic, route.data_class.encode(), value, [*headers, *origin])
            return None
        decisions: list[dict[str, Any]] = []
        for target in route.targets:
            if target.expires_at is not None and now_s >= target.expires_at:
                # The route is rebuilt within a second; until then the expiry is enforced here.
                target.expired.inc()
                decisions.append(audit_facts.decision(target.consumer, target.grant_id, False, "grant_expired"))
                continue
            delivered = render(target, record, value)
            await self.send(target.topic, key, delivered, [*headers, *target.extra_headers])
            target.calls.inc()
            target.records.inc()
            decisions.append(audit_facts.decision(target.consumer, target.grant_id, True, None, delivered))
        for denial in route.denials:
            denial.counter.inc()
            decisions.append(audit_facts.decision(denial.consumer, denial.grant_id, False, denial.reason))
        if route.targets:
            for name, raw in headers:
                if name == h.PUBLISHED_NS and raw:
                    route.latency.observe(max(0.0, (time.time_ns() - int(raw)) / 1e9))
                    break
        if not decisions:
            return None
        return audit_facts.record_fact(
            route.provider, route.data_class, route.mode, topic, partition, offset, key, headers, decisions
        )

    async def dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: HeaderList,
        data_class: str,
        bad: BadRecord,
    ) -> None:
        dl_headers = dead_letter_headers(headers, bad.reason, bad.detail, topic, partition, offset, data_class)
        await self.send(self.dead_letter_topic, key, value, dl_headers)
        self.metrics.dead_letter(data_class or "unknown", bad.reason)
