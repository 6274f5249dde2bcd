"""Releasing a periodic window: its held records go to each entitled subscriber as one batch.

The rules are those of the route at release time, exactly as for real-time records (fields,
masking, expiry, denials). Every record of a batch carries the batch id, the window, the count
and its index; after the records each subscriber gets one end marker (no value), so that it can
tell it holds the whole batch, even an empty one and even when the batch spans partitions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import Message

from sharebus_core import headers as h
from sharebus_core.errors import SharebusError
from sharebus_core.headers import HeaderList
from sharebus_router import audit_facts
from sharebus_router.dead_letters import BadRecord
from sharebus_router.freshness import FreshnessTracker
from sharebus_router.handler import RecordHandler
from sharebus_router.metrics import RouterMetrics
from sharebus_router.periodic import batch_id
from sharebus_router.projector import render
from sharebus_router.quality_gate import flagged
from sharebus_router.routes import ClassRoute
from sharebus_rules.periods import Window
from sharebus_rules.quality import Verdict

log = logging.getLogger(__name__)


class RoutesUnavailable(SharebusError, RuntimeError):
    """A window cannot be released while its class's routes are closed; the release is retried."""


Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class HeldRecord:
    key: bytes | None
    value: bytes | None
    headers: HeaderList
    origin_topic: str
    origin_partition: int
    origin_offset: int


def held_records(messages: Iterable[Message], class_code: str, seen: set[bytes] | None = None) -> list[HeldRecord]:
    """The class's records among held messages, markers dropped, each published record once.

    A router that crashed before committing may have held a record twice; the record id says so.
    ``seen`` carries the ids across chunks of one window.
    """
    records = []
    seen = set() if seen is None else seen
    wanted = class_code.encode()
    for msg in messages:
        if msg.key() != wanted or msg.error() is not None:
            continue
        headers = h.header_list(msg.headers())
        meta = dict(headers)
        if h.MARKER in meta or h.ORIGIN not in meta:
            continue
        record_id = meta.get(h.RECORD_ID)
        if record_id is not None:
            if record_id in seen:
                continue
            seen.add(record_id)
        origin = json.loads(meta[h.ORIGIN])
        key = bytes.fromhex(origin["key"]) if origin["key"] is not None else None
        kept = [(k, v) for k, v in headers if k != h.ORIGIN]
        records.append(HeldRecord(key, msg.value(), kept, origin["topic"], origin["partition"], origin["offset"]))
    return records


def record_fact(
    route: ClassRoute, record: HeldRecord, decisions: list[dict[str, Any]], verdict: Verdict | None = None
) -> dict[str, Any]:
    """The audit fact of a record replayed from the log, under its origin in the source topic."""
    fact = audit_facts.record_fact(
        route.provider,
        route.data_class,
        route.mode,
        record.origin_topic,
        record.origin_partition,
        record.origin_offset,
        record.key,
        record.headers,
        decisions,
        route.level,
    )
    if verdict is not None:
        fact["quality"] = verdict.as_fact()
    return fact


def batch_headers(batch: str, window: Window, count: int) -> HeaderList:
    return [
        (h.BATCH_ID, batch.encode()),
        (h.BATCH_START, window.start.isoformat().encode()),
        (h.BATCH_END_TIME, window.end.isoformat().encode()),
        (h.BATCH_COUNT, str(count).encode()),
    ]


class BatchReleaser:
    def __init__(
        self,
        routes: Mapping[str, ClassRoute],
        source_topic: Callable[[str], str],
        handler: RecordHandler,
        send: Send,
        audit_topic: str,
        metrics: RouterMetrics,
        freshness: FreshnessTracker,
        clock: Callable[[], float],
        audit_max_bytes: int = audit_facts.DEFAULT_MAX_BYTES,
    ) -> None:
        self.audit_max_bytes = audit_max_bytes
        self.routes = routes
        self.source_topic = source_topic
        self.handler = handler
        self.send = send
        self.audit_topic = audit_topic
        self.metrics = metrics
        self.freshness = freshness
        self.clock = clock

    async def _decoded(
        self, route: ClassRoute, held: list[HeldRecord]
    ) -> list[tuple[HeldRecord, dict[str, Any], Verdict | None]]:
        decoded = []
        for record in held:
            try:
                # The bus's headers only, also for records held before the router owned them (bus_headers).
                headers = self.handler.bus_headers(record.headers, route)
                value = await self.handler.decode_value(record.value, route)
                # Judged again for the flag header and the audit: a record that a rule rejects was
                # rejected when it was held, so it is not here (unless the rules changed since).
                verdict = self.handler.rejudge(route, value)
                decoded.append((replace(record, headers=flagged(headers, verdict)), value, verdict))
            except BadRecord as bad:
                # It was valid when held; its schema can only have been deleted since (or it was held
                # before its headers were checked). Nothing is lost: it goes to the dead-letter topic.
                log.warning("a held record of %s no longer decodes: %s", route.data_class, bad.detail)
                await self.handler.dead_letter(
                    record.origin_topic,
                    record.origin_partition,
                    record.origin_offset,
                    record.key,
                    record.value,
                    record.headers,
                    route.data_class,
                    bad,
                    send=self.send,
                )
        return decoded

    async def release(self, class_code: str, window: Window, held: list[HeldRecord]) -> int:
        """Sends the window's batch to every entitled subscriber; returns the number of records in it."""
        route = self.routes[self.source_topic(class_code)]
        if route.closed:
            # Denying a whole batch for a passing failure would lose it for good; held, it waits.
            raise RoutesUnavailable(f"the routes of {class_code} cannot be built; the release waits for them")
        records = await self._decoded(route, held)
        batch = batch_id(class_code, window)
        common = batch_headers(batch, window, len(records))
        decisions: list[list[dict[str, Any]]] = [[] for _ in records]
        now_s = self.clock()
        for target in route.targets:
            if target.expires_at is not None and now_s >= target.expires_at:
                target.expired.inc(len(records))
                for made in decisions:
                    made.append(
                        audit_facts.decision(
                            target.consumer, target.grant_id, False, "grant_expired", None, target.level
                        )
                    )
                continue
            for seq, (record, value, _verdict) in enumerate(records):
                delivered = render(target, value, record.value)
                headers = [*record.headers, *target.extra_headers, *common, (h.BATCH_SEQ, str(seq).encode())]
                await self.send(target.topic, record.key, delivered, headers)
                decisions[seq].append(
                    audit_facts.decision(target.consumer, target.grant_id, True, None, delivered, target.level)
                )
            # The end marker is keyed by the batch id; it carries no record, only the batch's headers.
            end = [*target.extra_headers, *common, (h.BATCH_END, b"1")]
            await self.send(target.topic, batch.encode(), None, end)
            target.calls.inc()
            target.records.inc(len(records))
            for crossing in target.crossings:
                crossing.inc(len(records))
        for denial in route.denials:
            denial.counter.inc(len(records))
            for made in decisions:
                made.append(
                    audit_facts.decision(denial.consumer, denial.grant_id, False, denial.reason, None, denial.level)
                )
        await self._audit(route, records, decisions)
        outcome = "delivered" if records else "empty"
        self.metrics.batches.labels(route.provider, class_code, outcome).inc()
        self.freshness.window_delivered[class_code] = bool(records)
        log.info("released %s: %d record(s) to %d subscriber(s)", batch, len(records), len(route.targets))
        return len(records)

    async def _audit(
        self,
        route: ClassRoute,
        records: list[tuple[HeldRecord, dict[str, Any], Verdict | None]],
        decisions: list[list[dict[str, Any]]],
    ) -> None:
        facts = [
            record_fact(route, record, made, verdict)
            for (record, _value, verdict), made in zip(records, decisions, strict=True)
            if made
        ]
        for key, value in audit_facts.encode_batch(facts, self.audit_max_bytes):
            await self.send(self.audit_topic, key, value, [])
