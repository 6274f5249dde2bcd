"""Backfill: the retained history of a class, replayed to one new subscriber, up to its hand-over point.

- Real-time classes: the source partitions' offsets below the hand-over point recorded when the
  subscriber's target went live (``handover.py``). Live delivery covers the rest, so the two meet
  without a gap or an overlap.
- Periodic classes: the records of the windows already released, read back from the held topic up
  to where the open window begins; the open window reaches the new subscriber in its next batch.

The field rules are the subscriber's as of now (its current target), and every replayed record
carries the ``sharebus-backfill`` header with the request id. Backfilled records are counted in
``sharebus_backfill_records_total``, not as calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import Message

from sharebus_core import headers as h
from sharebus_core.backfill_log import BackfillEvent, BackfillState
from sharebus_core.headers import HeaderList
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import RangeReader
from sharebus_core.topics import TopicNames
from sharebus_router import audit_facts
from sharebus_router.dead_letters import BadRecord
from sharebus_router.handler import RecordHandler
from sharebus_router.handover import handover_key
from sharebus_router.metrics import RouterMetrics
from sharebus_router.projector import render
from sharebus_router.quality_gate import flagged
from sharebus_router.release import HeldRecord, held_records, record_fact
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import ClassRoute, Target

log = logging.getLogger(__name__)
Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]
CHUNK = 2000


def _outcome(request: BackfillEvent, state: BackfillState, records: int | None, reason: str | None) -> BackfillEvent:
    return request.model_copy(
        update={"state": state, "records": records, "reason": reason, "at": dt.datetime.now(dt.UTC)}
    )


def failed(request: BackfillEvent, reason: str) -> BackfillEvent:
    return _outcome(request, BackfillState.FAILED, None, reason)


class Backfiller:
    def __init__(
        self,
        table: RouteTable,
        topics: TopicNames,
        handler: RecordHandler,
        send: Send,
        metrics: RouterMetrics,
        access: KafkaAccess,
        audit_max_bytes: int = audit_facts.DEFAULT_MAX_BYTES,
        refresh: Callable[[], Awaitable[None]] | None = None,
        points_wait_s: float = 30.0,
    ) -> None:
        # Re-reads the hand-over ledger (other workers write the points of their partitions).
        self.refresh = refresh
        self.points_wait_s = points_wait_s
        self.audit_max_bytes = audit_max_bytes
        self.table = table
        self.topics = topics
        self.handler = handler
        self.send = send
        self.metrics = metrics
        self.access = access

    def _ranges(self, route: ClassRoute, target: Target) -> list[tuple[str, int, int, int]] | str:
        """(topic, partition, start, end) to replay, or why there is nothing to replay from yet.

        Real-time: the source offsets below the hand-over point, once every partition of the class
        has one (each written by the worker that owns the partition). Periodic: the held records of
        the windows released before the subscriber's first window (the point is on the held topic).
        """
        entry = self.table.ledger.get(handover_key(target.consumer, route.data_class, target.grant_id))
        if entry is None:
            return "the subscription has no hand-over point yet; try again in a few seconds"
        if not route.held and entry.key not in self.table.ledger.whole:
            partitions = self.table.catalogue.data_class(route.data_class).partitions
            missing = sorted(set(range(partitions)) - set(entry.live_from))
            if missing:
                return f"partitions {missing} of the class have no hand-over point yet; try again in a few seconds"
        return [(entry.topic, p, 0, end) for p, end in sorted(entry.live_from.items())]

    async def _wait_ranges(self, route: ClassRoute, target: Target) -> list[tuple[str, int, int, int]] | str:
        """The ranges, waiting (and re-reading the ledger other workers write) while points are missing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.points_wait_s
        while True:
            ranges = self._ranges(route, target)
            if not isinstance(ranges, str) or self.refresh is None or loop.time() >= deadline:
                return ranges
            await asyncio.sleep(0.5)
            await self.refresh()

    async def serve(self, request: BackfillEvent) -> BackfillEvent:
        route = self.table.routes.get(self.topics.source(request.data_class))
        if route is None:
            return _outcome(request, BackfillState.REFUSED, None, f"unknown data class {request.data_class}")
        if route.closed:
            reason = f"the routes of {request.data_class} cannot be built now; ask again later"
            return _outcome(request, BackfillState.FAILED, None, reason)
        target = next((t for t in route.targets if t.consumer == request.consumer), None)
        if target is None:
            reason = f"{request.consumer} is not entitled to {request.data_class} now"
            return _outcome(request, BackfillState.REFUSED, None, reason)
        ranges = await self._wait_ranges(route, target)
        if isinstance(ranges, str):
            return _outcome(request, BackfillState.REFUSED, None, ranges)
        sent = 0
        seen: set[bytes] = set()
        for topic, partition, start, end in ranges:
            sent += await self._replay(
                request, route, target, RangeReader(self.access, topic, partition, start, end), seen
            )
        self.metrics.backfill_records.add(route.provider, target.consumer, route.data_class, sent)
        log.info("backfill %s: %d record(s) of %s to %s", request.request_id, sent, route.data_class, target.consumer)
        return _outcome(request, BackfillState.DONE, sent, None)

    def _records(self, route: ClassRoute, chunk: list[Message], seen: set[bytes]) -> list[HeldRecord]:
        if route.held:
            fresh = []
            for record in held_records(chunk, route.data_class):
                record_id = dict(record.headers).get(h.RECORD_ID)
                if record_id is None or record_id not in seen:
                    fresh.append(record)
                    if record_id is not None:
                        seen.add(record_id)
            return fresh
        records = []
        for msg in chunk:
            raw = msg.headers() or []
            items = raw.items() if isinstance(raw, dict) else raw
            headers: HeaderList = [(k, v.encode() if isinstance(v, str) else v) for k, v in items if v is not None]
            records.append(
                HeldRecord(msg.key(), msg.value(), headers, msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
            )
        return records

    async def _replay(
        self, request: BackfillEvent, route: ClassRoute, target: Target, reader: RangeReader, seen: set[bytes]
    ) -> int:
        loop = asyncio.get_running_loop()
        marker = (h.BACKFILL, request.request_id.encode())
        sent = 0
        try:
            while not reader.done:
                chunk = await loop.run_in_executor(None, reader.next_chunk, CHUNK)
                facts = []
                for record in self._records(route, chunk, seen):
                    try:
                        # Replayed from the source topic: the publisher's headers are checked and owned again.
                        headers = self.handler.bus_headers(record.headers, route)
                        value = await self.handler.decode_value(record.value, route)
                    except BadRecord:
                        continue  # it went to the dead-letter topic when it was first routed
                    verdict = self.handler.rejudge(route, value)
                    if verdict is not None and verdict.rejected_by is not None:
                        continue  # rejected for quality: it went to the dead-letter topic too
                    headers = flagged(headers, verdict)
                    delivered = render(target, value, record.value)
                    await self.send(target.topic, record.key, delivered, [*headers, *target.extra_headers, marker])
                    sent += 1
                    decision = audit_facts.decision(
                        target.consumer, target.grant_id, True, None, delivered, target.level
                    )
                    facts.append({**record_fact(route, record, [decision], verdict), "backfill": request.request_id})
                for key, payload in audit_facts.encode_batch(facts, self.audit_max_bytes):
                    await self.send(self.topics.audit_facts, key, payload, [])
        finally:
            reader.close()
        return sent
