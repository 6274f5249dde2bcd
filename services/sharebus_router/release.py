"""Releasing a periodic window: its held records go to each entitled subscriber as one batch.

The rules are those of the route at release time, exactly as for real-time records (fields,
masking, expiry, denials). Every record of a batch carries the batch id, the window, the count
and its index; after the records each subscriber gets one end marker (no value), so that it can
tell it holds the whole batch, even an empty one and even when the batch spans partitions.

Every record is made ready (decoded, judged, rendered for each subscriber, size-checked) before the first
is sent, so the count is known. One that fails any of it goes to the dead-letter topic and the batch goes
without it; only a failure to send (Kafka's) escapes, and the release is retried from the same records.
A retry does not dead-letter again what an earlier attempt of the same window had acknowledged; a dead
letter whose acknowledgement is not known is sent again rather than risk losing it, and a replay after a
crash sends it again too. Every copy names the same source record (``sharebus-dlq-topic``, ``-partition``,
``-offset``), which is how a reader of the dead-letter topic recognises a repeat.

Audit first: the window's audit facts are sent and acknowledged, and the targets they name as delivered
(the *plan*) are handed to ``on_audited`` to be kept in the window's state, before the first delivery is
sent. A release that fails after that (a send refused, the worker killed) is retried with the plan: the
same records go whole to the same targets, and no fact is written again. So no delivery goes out without
its fact, and each is audited once; only a crash between the facts' acknowledgement and the plan's being
kept audits the window a second time (never a delivery without its fact).

Each plan target whose batch Kafka has acknowledged (records and end marker) is then kept as *done* in the
state too (``on_done``). A retry sends only to the plan's targets not done, in the plan's order, and counts
only those (``target.calls``, ``target.records``, crossings): each window's delivery to a target is sent
and counted once, whichever attempt made it.

A retry checks each remaining plan target again, as the first attempt did: a grant's expiry is a hard stop
and a revoked grant (or a removed consumer) has no route to render the batch. Such a target is not sent the
batch, and since its facts say it was delivered, the retry first writes a correcting fact for every record
of the batch: the decision ``withdraw`` for that consumer and grant, with the reason
``grant_expired_before_release`` or ``grant_revoked_before_release`` (``audit_facts.withdrawal``). Once Kafka
has acknowledged it the target is done too, so it is withdrawn once. The trail is append-only: the earlier
``deliver`` stays, and a reader takes a record's later ``withdraw`` for the same consumer and grant as
cancelling it (docs/audit.md). It is true whatever an earlier, failed attempt sent to that target: a batch
whose end marker was not acknowledged is not done, and the SDK hands out no batch without its end marker.
The done state of a target is flushed to the state's changelog (holding.py) before the next target's batch
is sent, and a target is counted only once Kafka acknowledged its batch. The one gap left is a worker killed
between a target's end marker being acknowledged and that flush, with the grant revoked before the next
owner's retry: that withdrawal names a batch the subscriber could have received whole.

A known gap (not closed): a retry after the facts makes the batch's records ready again (``_ready``) from the
same held offsets, while the facts are fixed by the first attempt, and nothing kept says which records they
name. So if a record's preparation gives another result on the retry than on the first attempt:

- a record the first attempt made ready (its facts say ``deliver`` to every plan target) and the retry
  cannot (its schema deleted meanwhile, say) is dead-lettered and left out of the retry's batch, and its
  ``deliver`` facts stand for the plan targets not done: no ``withdraw`` is written for it, so the trail
  says those deliveries were made and they were not (the letter records the record, nothing is lost);
- a record the first attempt dead-lettered (no fact of it) stays out of a retry on the same worker (the
  in-memory ``_dead_lettered`` set), but the next owner after a crash does not know it: if it can make the
  record ready, the record goes out in its batch to the targets not done, without a fact (and is in the
  dead-letter topic too).

The batch's count may then differ between the attempts too. A deterministic failure (a malformed value, a
record too large for a grant) fails alike on every attempt and is not affected. Closing it needs the retry
to know the origins the facts name: kept in the window's state (one list per window, which can outgrow a
changelog record) or read back from the audit topic; docs/router-data-path.md says the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from sharebus_core import headers as h
from sharebus_core.errors import SharebusError
from sharebus_core.headers import HeaderList
from sharebus_router import audit_facts, release_facts
from sharebus_router.dead_letters import BadRecord, DeadLetterReason
from sharebus_router.freshness import FreshnessTracker
from sharebus_router.handler import RecordHandler
from sharebus_router.held_records import HeldRecord, Origin
from sharebus_router.metrics import RouterMetrics
from sharebus_router.periodic import batch_id
from sharebus_router.projector import render
from sharebus_router.quality_gate import flagged
from sharebus_router.release_plan import (
    Audited,
    Done,
    Plan,
    Ready,
    Withheld,
    batch_headers,
    first_targets,
    retry_targets,
    target_name,
)
from sharebus_router.routes import ClassRoute, Target
from sharebus_rules.periods import Window

log = logging.getLogger(__name__)


class RoutesUnavailable(SharebusError, RuntimeError):
    """A window cannot be released while its class's routes are closed; the release is retried."""


Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]
Flush = Callable[[], Awaitable[Any]]


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
        flush: Flush | None = None,
    ) -> None:
        """``flush``: waits until Kafka has acknowledged everything sent (None: ``send`` returns only then)."""
        self.audit_max_bytes = audit_max_bytes
        self.routes = routes
        self.source_topic = source_topic
        self.handler = handler
        self.send = send
        self.audit_topic = audit_topic
        self.metrics = metrics
        self.freshness = freshness
        self.clock = clock
        self.flush = flush
        # Per class: the batch last released and the origins of its records whose dead letters Kafka
        # acknowledged, so that a retried release of that window does not dead-letter them again.
        self._dead_lettered: dict[str, tuple[str, set[Origin]]] = {}

    def _dead_lettered_in(self, class_code: str, batch: str) -> set[Origin]:
        """The origins already dead-lettered for ``batch``; a new window of the class forgets the last one's."""
        kept = self._dead_lettered.get(class_code)
        if kept is None or kept[0] != batch:
            kept = self._dead_lettered[class_code] = (batch, set())
        return kept[1]

    async def _ready(
        self,
        route: ClassRoute,
        held: list[HeldRecord],
        targets: list[tuple[Target, bool]],
        room: HeaderList,
        done: set[Origin],
    ) -> list[Ready]:
        """The batch's records, each decoded, judged, rendered and size-checked for every live target before
        anything is sent: the batch's count goes out with its first record, and a record that fails any of
        it is dead-lettered alone. Raising instead would fail every release of the window (each retried a
        second later) and hold back all its other records for good. ``done``: the origins an earlier attempt of
        this batch dead-lettered (acknowledged) on this worker; they stay out of the batch (even if they
        could be made ready now) and are not dead-lettered again."""
        ready = []
        sent: list[Origin] = []
        for record in held:
            where: Origin = (record.origin_topic, record.origin_partition, record.origin_offset)
            if where in done:
                # Dead-lettered by an earlier attempt: it stays out (no fact of the first attempt names it),
                # even if it could be made ready now. Nothing is lost: its letter holds it.
                continue
            try:
                ready.append(await self._prepare(route, record, targets, room))
            except Exception as exc:  # noqa: BLE001 - one record's failure is dead-lettered and logged (_reject)
                await self._reject(route, record, exc)
                sent.append(where)
        if sent:
            # Remembered only once acknowledged: a dead letter lost with a failed attempt is sent again.
            if self.flush is not None:
                await self.flush()
            done.update(sent)
        return ready

    async def _reject(self, route: ClassRoute, record: HeldRecord, exc: Exception) -> None:
        """Dead-letters a held record that cannot be released, with why."""
        match exc:
            case BadRecord() as bad:
                # It was valid when held; its schema can only have been deleted since (or it was held
                # before its headers were checked, or a grant's headers make a delivery too large).
                # Nothing is lost: it goes to the dead-letter topic.
                log.warning("a held record of %s cannot be released (%s): %s", route.data_class, bad.reason, bad.detail)
                await self._dead_letter(route, record, bad)
            case _:
                # As on the data path (RecordHandler.handle): what the code did not foresee about one record
                # (a value the projection cannot encode, say) is that record's, not its whole window's.
                log.error(
                    "held record %s[%d]@%d could not be released; dead-lettered",
                    record.origin_topic,
                    record.origin_partition,
                    record.origin_offset,
                    exc_info=exc,
                )
                unforeseen = BadRecord(DeadLetterReason.UNPROCESSABLE, f"{type(exc).__name__}: {exc}")
                await self._dead_letter(route, record, unforeseen)

    async def _prepare(
        self, route: ClassRoute, record: HeldRecord, targets: list[tuple[Target, bool]], room: HeaderList
    ) -> Ready:
        """``targets``: the route's, each with whether it is live (its grant not expired); ``room``: the batch
        headers a delivery will carry, at their largest. Raises on any failure."""
        # The bus's headers only, also for records held before the router owned them (bus_headers).
        headers = self.handler.bus_headers(record.headers, route)
        writer, _body, value = await self.handler.decoded(record.value, route)
        # Judged again for the flag header and the audit: a record that a rule rejects was
        # rejected when it was held, so it is not here (unless the rules changed since).
        verdict = self.handler.rejudge(route, value)
        deliveries: list[bytes | None] = []
        for target, is_live in targets:
            if not is_live:
                deliveries.append(None)
                continue
            delivered = render(await self.handler.fitted(route, writer, target), value, record.value)
            out = [*flagged(headers, verdict, target.shown), *target.extra_headers, *room]
            self.handler.check_size(record.key, delivered, out, f"the delivery to {target.consumer}")
            deliveries.append(delivered)
        return Ready(replace(record, headers=headers), verdict, tuple(deliveries))

    async def _dead_letter(self, route: ClassRoute, record: HeldRecord, bad: BadRecord) -> None:
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

    async def release(
        self,
        class_code: str,
        window: Window,
        held: list[HeldRecord],
        audited: Plan | None = None,
        on_audited: Audited | None = None,
        done: Iterable[str] = (),
        on_done: Done | None = None,
    ) -> int:
        """Sends the window's batch to every entitled subscriber; returns the number of records in it.

        ``audited``: the plan of an earlier attempt whose facts Kafka acknowledged (None: no attempt got that
        far); ``on_audited``: keeps the plan once this attempt's facts are acknowledged, before any delivery;
        ``done``: the plan's targets an earlier attempt settled; ``on_done``: keeps a target as settled once
        its batch (or its deliveries' withdrawal) is acknowledged."""
        route = self.routes[self.source_topic(class_code)]
        if route.closed:
            # Denying a whole batch for a passing failure would lose it for good; held, it waits.
            raise RoutesUnavailable(f"the routes of {class_code} cannot be built; the release waits for them")
        batch = batch_id(class_code, window)
        withheld: list[Withheld] = []
        if audited is None:
            # Each target with whether it receives the batch: its grant not expired now.
            targets = first_targets(route, self.clock())
        else:
            targets, withheld = retry_targets(route, batch, audited, set(done), self.clock())
        # The count and index are not known yet; as large as they can be, they bound the size check.
        room = [*batch_headers(batch, window, len(held)), (h.BATCH_SEQ, str(len(held)).encode())]
        records = await self._ready(route, held, targets, room, self._dead_lettered_in(class_code, batch))
        if audited is None:
            await self._audit_first(route, records, targets, on_audited)
        elif withheld:
            await self._withdraw(route, batch, records, withheld, on_done)
        common = batch_headers(batch, window, len(records))
        for index, (target, is_live) in enumerate(targets):
            if is_live:
                await self._send_batch(target, index, batch, common, records)
                if self.flush is not None:
                    await self.flush()
                # Counted once Kafka acknowledged the batch, with its being done: an attempt that fails
                # before counts nothing, so the retry that sends it counts it once.
                self._count(target, records)
                if on_done is not None:
                    await on_done(target_name(target))
        outcome = "delivered" if records else "empty"
        self.metrics.batches.labels(route.provider, class_code, outcome).inc()
        self.freshness.window_delivered[class_code] = bool(records)
        sent = sum(1 for _target, is_live in targets if is_live)
        log.info("released %s: %d record(s) to %d subscriber(s)", batch, len(records), sent)
        return len(records)

    async def _withdraw(
        self, route: ClassRoute, batch: str, records: list[Ready], withheld: list[Withheld], on_done: Done | None
    ) -> None:
        """Facts withdrawing the withheld targets' deliveries of the batch's records, acknowledged, then those
        targets kept as done, before any delivery of the retry is sent."""
        await self._audit(route, records, release_facts.withdrawals(records, withheld), quality=False)
        if self.flush is not None:
            await self.flush()
        # Counted once the withdrawal is acknowledged (an attempt that fails before counts nothing).
        release_facts.count_withdrawn(route, records, withheld)
        if on_done is not None:
            for gone in withheld:
                await on_done(gone.name)
        log.info("%s: deliveries to %s withdrawn", batch, [gone.name for gone in withheld])

    async def _audit_first(
        self, route: ClassRoute, records: list[Ready], targets: list[tuple[Target, bool]], on_audited: Audited | None
    ) -> None:
        """The batch's facts, acknowledged and their plan kept, before any delivery is sent."""
        await self._audit(route, records, release_facts.first_decisions(route, records, targets))
        if self.flush is not None:
            await self.flush()
        # The denials are counted once their facts are acknowledged: an attempt that fails before counts none.
        release_facts.count_first(route, records, targets)
        if on_audited is not None:
            await on_audited(tuple(target_name(target) for target, is_live in targets if is_live))

    async def _send_batch(
        self,
        target: Target,
        index: int,
        batch: str,
        common: HeaderList,
        records: list[Ready],
    ) -> None:
        """One target's batch: its records (``index``: the target's place among the route's), then the end marker."""
        for seq, ready in enumerate(records):
            delivered = ready.deliveries[index]
            flags = flagged(ready.record.headers, ready.verdict, target.shown)
            headers = [*flags, *target.extra_headers, *common, (h.BATCH_SEQ, str(seq).encode())]
            await self.send(target.topic, target.key_of(ready.record.key), delivered, headers)
        # The end marker is keyed by the batch id; it carries no record, only the batch's headers.
        end = [*target.extra_headers, *common, (h.BATCH_END, b"1")]
        await self.send(target.topic, batch.encode(), None, end)

    @staticmethod
    def _count(target: Target, records: list[Ready]) -> None:
        """One target's batch, acknowledged: one call, its records, its crossings."""
        target.calls.inc()
        target.records.inc(len(records))
        for crossing in target.crossings:
            crossing.inc(len(records))

    async def _audit(
        self, route: ClassRoute, records: list[Ready], decisions: release_facts.Decisions, quality: bool = True
    ) -> None:
        """``quality``: whether the facts carry each record's verdict (a withdrawal's do not: its first fact did)."""
        facts = release_facts.facts(route, records, decisions, quality)
        for key, value in audit_facts.encode_batch(facts, self.audit_max_bytes):
            await self.send(self.audit_topic, key, value, [])
