"""Backfill: the retained history of a class, replayed to one new subscriber, up to its hand-over point.

- Real-time classes: the source partitions' offsets below the hand-over point recorded when the
  subscriber's target went live (``handover.py``). Live delivery covers the rest, so the two meet
  without a gap or an overlap.
- Periodic classes: the records of the windows already released, read back from the held topic up
  to where the open window begins; the open window reaches the new subscriber in its next batch.

The field rules are the subscriber's as of now (its current target), and every replayed record
carries the ``sharebus-backfill`` header with the request id. Backfilled records are counted in
``sharebus_backfill_records_total``, not as calls.

A backfill obeys the grant rules of live delivery for as long as it runs: before each record is sent,
the subscriber's target must still be in the class's current route (a revoked grant has none) and its
grant must not have expired on the router's clock. Otherwise it stops there, refused, with the count of
records it delivered before; or superseded, naming the new grant, when a newer grant of the same consumer
now governs the class (the backfill was asked for under the old one's rules). A record whose headers live
delivery refuses (``bus_headers``) is skipped, as it went to the dead-letter topic when it was first routed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from confluent_kafka import Message

from sharebus_core import headers as h
from sharebus_core.backfill_log import BackfillEvent, BackfillState
from sharebus_core.errors import SharebusError
from sharebus_core.headers import HeaderList
from sharebus_core.kafka import KafkaAccess, UnreadableHeaders, message_headers
from sharebus_core.topic_reader import RangeReader
from sharebus_core.topics import TopicNames
from sharebus_router import audit_facts
from sharebus_router.bus_headers import RawHeader
from sharebus_router.dead_letters import BadRecord
from sharebus_router.handler import RecordHandler
from sharebus_router.handover import handover_key
from sharebus_router.held_records import HeldRecord, Origin, held_records, record_fact
from sharebus_router.metrics import RouterMetrics
from sharebus_router.projector import render
from sharebus_router.quality_gate import flagged
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import ClassRoute, Target
from sharebus_rules.quality import Verdict

log = logging.getLogger(__name__)
Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]
CHUNK = 2000


def _outcome(request: BackfillEvent, state: BackfillState, records: int | None, reason: str | None) -> BackfillEvent:
    return request.model_copy(
        update={"state": state, "records": records, "reason": reason, "at": dt.datetime.now(dt.UTC)}
    )


def failed(request: BackfillEvent, reason: str) -> BackfillEvent:
    return _outcome(request, BackfillState.FAILED, None, reason)


def _closed_reason(data_class: str) -> str:
    return f"the routes of {data_class} cannot be built now; ask again later"


def _where(record: HeldRecord) -> tuple[str, int, int]:
    return record.origin_topic, record.origin_partition, record.origin_offset


class Stopped(SharebusError):
    """The backfill may deliver no more (see the module's doc); ``sent``: what it delivered before."""

    def __init__(self, state: BackfillState, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason
        self.sent = 0


def _gone(current: ClassRoute, target: Target, who: str) -> Stopped:
    """Why ``target`` is no longer in the class's current route: another grant of the consumer governs it
    now (superseded), or none does (revoked, or its event can no longer be read)."""
    successor = next((t for t in current.targets if t.consumer == target.consumer), None)
    if successor is not None:
        by = f"grant {successor.grant_id}" if successor.grant_id else "its catalogue subscription"
        reason = f"{who} was superseded by {by} during the backfill; ask again to backfill under it"
        return Stopped(BackfillState.SUPERSEDED, reason)
    return Stopped(BackfillState.REFUSED, f"{who} was revoked or closed during the backfill")


# A replayed record and the headers it was read with, valueless ones included (bus_headers judges them).
Replayed = tuple[HeldRecord, Sequence[RawHeader]]


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
            return _outcome(request, BackfillState.FAILED, None, _closed_reason(request.data_class))
        target = next((t for t in route.targets if t.consumer == request.consumer), None)
        if target is None:
            reason = f"{request.consumer} is not entitled to {request.data_class} now"
            return _outcome(request, BackfillState.REFUSED, None, reason)
        ranges = await self._wait_ranges(route, target)
        if isinstance(ranges, str):
            return _outcome(request, BackfillState.REFUSED, None, ranges)
        sent = 0
        seen: set[Origin] = set()
        try:
            # An expired grant's target stays in the route until it is rebuilt: refused, not done with 0.
            self._check_entitled(route, target)
            for topic, partition, start, end in ranges:
                sent += await self._replay(request, route, target, self._reader(topic, partition, start, end), seen)
        except Stopped as stopped:
            sent += stopped.sent
            self.metrics.backfill_records.add(route.provider, target.consumer, route.data_class, sent)
            log.warning("backfill %s stopped after %d record(s): %s", request.request_id, sent, stopped.reason)
            reason = f"{stopped.reason}; stopped after {sent} record(s)"
            return _outcome(request, stopped.state, sent, reason)
        self.metrics.backfill_records.add(route.provider, target.consumer, route.data_class, sent)
        log.info("backfill %s: %d record(s) of %s to %s", request.request_id, sent, route.data_class, target.consumer)
        return _outcome(request, BackfillState.DONE, sent, None)

    def _reader(self, topic: str, partition: int, start: int, end: int) -> RangeReader:
        return RangeReader(self.access, topic, partition, start, end)

    def _check_entitled(self, route: ClassRoute, target: Target) -> None:
        """Raises ``Stopped`` when live delivery would no longer deliver to ``target`` (handler's ``_plan``).

        The class's current route, not the one the backfill began with: a revoked grant's target is gone
        from the rebuilt route. The expiry is the current target's (a grant can be extended) on the
        handler's clock, which enforces it until the route is rebuilt.
        """
        current = self.table.routes.get(self.topics.source(route.data_class))
        if current is None or current.closed:
            raise Stopped(BackfillState.FAILED, _closed_reason(route.data_class))
        live = next(
            (t for t in current.targets if t.consumer == target.consumer and t.grant_id == target.grant_id), None
        )
        who = f"{target.consumer}'s grant {target.grant_id} to {route.data_class}"
        if live is None:
            raise _gone(current, target, who)
        if live.expires_at is not None and self.handler.clock() >= live.expires_at:
            raise Stopped(BackfillState.REFUSED, f"{who} expired during the backfill (grant_expired)")

    def _records(self, route: ClassRoute, chunk: list[Message], seen: set[Origin]) -> list[Replayed]:
        if route.held:
            # Each source record once (by its origin, across the chunks), as a release takes them.
            return [(record, record.headers) for record in held_records(chunk, route.data_class, seen)]
        records: list[Replayed] = []
        for msg in chunk:
            try:
                raw = message_headers(msg)
            except UnreadableHeaders as exc:
                # Live delivery dead-lettered it (data_path.py): no subscriber ever received it.
                log.warning("%s[%s]@%s is not backfilled: %s", msg.topic(), msg.partition(), msg.offset(), exc)
                continue
            given: list[RawHeader] = raw
            # Valueless headers go to bus_headers as live delivery hands them over: it refuses some.
            headers: HeaderList = [(k, v) for k, v in given if v is not None]
            held = HeldRecord(
                msg.key(), msg.value(), headers, msg.topic() or "", msg.partition() or 0, msg.offset() or 0
            )
            records.append((held, given))
        return records

    async def _replay(
        self, request: BackfillEvent, route: ClassRoute, target: Target, reader: RangeReader, seen: set[Origin]
    ) -> int:
        loop = asyncio.get_running_loop()
        sent = 0
        try:
            while not reader.done:
                chunk = await loop.run_in_executor(None, reader.next_chunk, CHUNK)
                facts: list[dict[str, Any]] = []
                try:
                    for record, raw in self._records(route, chunk, seen):
                        fact = await self._replay_one(request, route, target, record, raw)
                        if fact is not None:
                            facts.append(fact)
                            sent += 1
                except Stopped as stopped:
                    stopped.sent = sent
                    raise
                finally:
                    # What was delivered is audited, however the chunk ended (stopped, or a failure).
                    await self._audit(facts)
        finally:
            reader.close()
        return sent

    async def _replay_one(
        self, request: BackfillEvent, route: ClassRoute, target: Target, record: HeldRecord, raw: Sequence[RawHeader]
    ) -> dict[str, Any] | None:
        """Sends one record to ``target``; its audit fact, or None when it is skipped. Raises ``Stopped``."""
        try:
            prepared = await self._prepare_one(request, route, target, record, raw)
        except Exception:
            # As on the data path (RecordHandler.handle), which dead-lettered it as unprocessable: what the
            # code did not foresee about one record is that record's, not the whole backfill's.
            log.exception("backfill %s skips %s[%d]@%d", request.request_id, *_where(record))
            return None
        if prepared is None:
            return None
        delivered, out, verdict = prepared
        # Checked with no await before the send, so a revocation applied meanwhile cannot slip past it.
        self._check_entitled(route, target)
        await self.send(target.topic, target.key_of(record.key), delivered, out)
        decision = audit_facts.decision(target.consumer, target.grant_id, True, None, delivered, target.level)
        return {**record_fact(route, record, [decision], verdict), "backfill": request.request_id}

    async def _prepare_one(
        self, request: BackfillEvent, route: ClassRoute, target: Target, record: HeldRecord, raw: Sequence[RawHeader]
    ) -> tuple[bytes | None, HeaderList, Verdict | None] | None:
        """What ``target`` receives of one record (value, headers, verdict), or None when it is skipped."""
        try:
            # Replayed from the source topic: the publisher's headers are checked and owned again.
            headers = self.handler.bus_headers(raw, route)
            writer, _body, value = await self.handler.decoded(record.value, route)
            fitted = await self.handler.fitted(route, writer, target)
        except BadRecord:
            return None  # it went to the dead-letter topic when it was first routed
        verdict = self.handler.rejudge(route, value)
        if verdict is not None and verdict.rejected_by is not None:
            return None  # rejected for quality: it went to the dead-letter topic too
        delivered = render(fitted, value, record.value)
        out = [
            *flagged(headers, verdict, fitted.shown),
            *target.extra_headers,
            (h.BACKFILL, request.request_id.encode()),
        ]
        try:
            self.handler.check_size(record.key, delivered, out, f"the backfilled delivery to {target.consumer}")
        except BadRecord as bad:
            # Live delivery keeps room for the backfill's header; only a grant changed since can outgrow it.
            log.warning("backfill %s skips %s[%d]@%d: %s", request.request_id, *_where(record), bad.detail)
            return None
        return delivered, out, verdict

    async def _audit(self, facts: list[dict[str, Any]]) -> None:
        for key, payload in audit_facts.encode_batch(facts, self.audit_max_bytes):
            await self.send(self.topics.audit_facts, key, payload, [])
