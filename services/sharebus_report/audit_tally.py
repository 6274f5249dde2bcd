"""The audit trail's events counted per data class and per consumer system. Pure: no Kafka.

Feed it every audit event (``add``), in each partition's log order; it keeps counters, never the
events, so a year of the trail streams through in bounded memory. What it counts:

- ``realtime`` and ``periodic`` events (the router's decisions, one per record and consumer):
  records provided (distinct source records, backfills excluded: they were provided before),
  deliveries and denials, calls (a real-time delivery is one call; a periodic batch to one
  subscriber is one call; a backfill to one system is one call, as ``sharebus_calls_total`` counts),
  and the contract-A ``quality`` object of each record (once per record);
- ``gateway`` events: a refused request (``forbidden``) of a system;
- periodic releases, as evidence of the windows released on time (``windows``);
- ``withdraw`` events (periodic only: a retried release withheld a batch its first facts said was
  delivered, the grant having been revoked or having expired since; docs/audit.md): each undoes the
  delivery this tally counted of the same key (``sharebus_audit.withdrawals.withdrawal_key``: audit
  partition, record's origin, consumer, grant), whenever the retry wrote it, and counts as a denial instead;
  the batch's call is undone with its last delivery. To match them the tally keeps the key of every periodic
  delivery it counted (memory grows with the period's periodic deliveries, not with the trail read).

Other modes (``control``: forged control events whose claims are untrusted; a future mode) are read
and not counted. The router delivers at least once, so a fact can be chained twice after a crash:
a repeat of a (record, consumer) decision is dropped, within a bounded window of recent ones per
audit partition (a replay follows its original closely in the same partition). Decisions read from the
margin before the period are remembered, not counted, so a replay just past the period's start is
dropped too: the period before counted it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sharebus_audit.withdrawals import WithdrawalKey, withdrawal_key
from sharebus_core.catalogue import Catalogue, UpdateMode
from sharebus_core.recent_ids import RecentIds
from sharebus_report.period import Period
from sharebus_report.windows import released_window
from sharebus_rules.periods import Window, window_containing

ROUTER_MODES = frozenset({"realtime", "periodic"})
DEFAULT_DEDUPE_WINDOW = 100_000


@dataclass(slots=True)
class ClassTally:
    """One data class, as its provider's record."""

    provider: str | None = None
    records: int = 0
    deliveries: int = 0
    denials: int = 0
    calls: int = 0
    quality_records: int = 0
    filled: int = 0
    fields: int = 0
    valid: int = 0
    released_ends: set[float] = field(default_factory=set)


@dataclass(slots=True)
class SystemTally:
    """One system, as a consumer."""

    received: int = 0
    calls: int = 0
    denials: int = 0
    refusals: int = 0


def event_time(event: Mapping[str, Any]) -> dt.datetime | None:
    raw = event.get("time")
    if not isinstance(raw, str):
        return None
    try:
        at = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _origin(event: Mapping[str, Any]) -> str | None:
    source = event.get("source")
    if not isinstance(source, Mapping):
        return None
    topic, partition, offset = source.get("topic"), source.get("partition"), source.get("offset")
    if not isinstance(topic, str) or not isinstance(partition, int) or not isinstance(offset, int):
        return None
    return f"{topic}:{partition}:{offset}"


def _quality(event: Mapping[str, Any]) -> tuple[int, int, bool] | None:
    """Contract A's ``{"failed": [...], "filled": n, "fields": m}`` as (filled, fields, valid)."""
    found = event.get("quality")
    if not isinstance(found, Mapping):
        return None
    filled, fields, failed = found.get("filled"), found.get("fields"), found.get("failed")
    if not isinstance(filled, int) or not isinstance(fields, int) or not isinstance(failed, list):
        return None
    if not 0 <= filled <= fields:
        return None
    return filled, fields, not failed


class AuditTally:
    def __init__(
        self,
        catalogue: Catalogue,
        period: Period,
        as_of: dt.datetime,
        grace: dt.timedelta,
        dedupe_window: int = DEFAULT_DEDUPE_WINDOW,
    ) -> None:
        self.catalogue = catalogue
        self.period = period
        self.as_of = as_of
        self.grace = grace
        self.dedupe_window = dedupe_window
        self.classes: dict[str, ClassTally] = defaultdict(ClassTally)
        self.systems: dict[str, SystemTally] = defaultdict(SystemTally)
        self.events = 0  # events of the period that were counted
        self.repeats = 0  # repeated decisions dropped
        self.skipped = 0  # events that are not readable audit events
        self._decisions: dict[int, RecentIds] = {}
        self._records: dict[int, RecentIds] = {}
        self._batches: set[tuple[str, str, str]] = set()
        # Per periodic batch (as ``_batches``): its deliveries counted, so that a withdrawal can undo them.
        self._batch_deliveries: dict[tuple[str, str, str], int] = {}
        # Per periodic delivery counted, by the key its withdrawal shares: the batch it was counted in. A
        # retry's withdrawal may be written windows after the facts, so its own time cannot name the batch.
        self._delivered_in: dict[WithdrawalKey, tuple[str, str, str]] = {}
        self._backfills: set[tuple[str, str]] = set()
        self._release_window: dict[str, tuple[Window, Window]] = {}
        # The time of the earliest event read (the margin before the period included).
        self.earliest: dt.datetime | None = None
        # When the trail begins, once the reader says it read the trail from its first event (``began``).
        self.bus_began: dt.datetime | None = None

    def _recent(self, memory: dict[int, RecentIds], partition: int) -> RecentIds:
        if partition not in memory:
            memory[partition] = RecentIds(self.dedupe_window)
        return memory[partition]

    def add(self, event: Mapping[str, Any], partition: int = 0) -> None:
        at = event_time(event)
        if at is None:
            self.skipped += 1
            return
        if self.earliest is None or at < self.earliest:
            self.earliest = at
        if at >= self.as_of:
            return
        mode = event.get("mode")
        if mode == "gateway":
            self._gateway(event, at)
        elif mode in ROUTER_MODES:
            self._decision(event, at, partition)

    def read_whole(self) -> None:
        """The reader read the trail from its very first event: the bus began with the earliest one."""
        self.bus_began = self.earliest

    def _gateway(self, event: Mapping[str, Any], at: dt.datetime) -> None:
        consumer = event.get("consumer")
        if at in self.period and event.get("decision") == "forbidden" and isinstance(consumer, str):
            self.events += 1
            self.systems[consumer].refusals += 1

    def _decision(self, event: Mapping[str, Any], at: dt.datetime, partition: int) -> None:
        origin, code = _origin(event), event.get("data_class")
        consumer, decision, backfill = event.get("consumer"), event.get("decision"), event.get("backfill")
        if origin is None or not isinstance(code, str) or decision not in ("deliver", "deny", "withdraw"):
            self.skipped += 1
            return
        consumer = consumer if isinstance(consumer, str) else None
        backfill = str(backfill) if backfill is not None else None
        if decision == "withdraw":
            self._withdrawn(event, origin, code, consumer, at, partition)
            return
        if event.get("mode") == "periodic" and consumer is not None and backfill is None:
            # Evidence for the window the release closed, which may end in the period while its
            # release falls just after it (hence before the period test).
            self._released(code, at)
        if at < self.period.start:
            self._remember(origin, consumer, backfill, partition)
            return
        if at not in self.period:
            return
        self.events += 1
        if self._recent(self._decisions, partition).is_repeat(f"{origin}|{consumer}|{backfill}"):
            self.repeats += 1
            return
        tally = self.classes[code]
        if tally.provider is None and isinstance(event.get("provider"), str):
            tally.provider = event["provider"]
        if backfill is None and not self._recent(self._records, partition).is_repeat(origin):
            self._record(tally, event)
        if decision == "deny":
            tally.denials += 1
            if consumer is not None:
                self.systems[consumer].denials += 1
        elif consumer is not None:
            self._delivered(tally, code, consumer, event, at, backfill, partition)

    def _withdrawn(
        self, event: Mapping[str, Any], origin: str, code: str, consumer: str | None, at: dt.datetime, partition: int
    ) -> None:
        """A delivery of a periodic batch that was audited, then withheld by a retried release."""
        grant = event.get("grant_id")
        repeat = self._recent(self._decisions, partition).is_repeat(f"{origin}|{consumer}|{grant}|withdraw")
        if event.get("mode") != "periodic" or consumer is None:
            return
        if at in self.period:
            self.events += 1
            self.repeats += int(repeat)
        # Matched by record, consumer and grant, not by the window of its own time: a retry may come
        # long after the first attempt's facts. A withdrawal past the period still undoes a delivery the
        # period counted (the reader read that far); one whose delivery this tally did not count (an
        # earlier period's, or none) undoes nothing. Each delivery is undone once (a repeat finds none).
        key = withdrawal_key(partition, event)
        batch = self._delivered_in.pop(key, None) if key is not None else None
        if batch is None:
            return
        counted = self._batch_deliveries.get(batch, 0)
        if counted <= 0:
            return
        tally, system = self.classes[code], self.systems[consumer]
        self._batch_deliveries[batch] = counted - 1
        tally.deliveries -= 1
        system.received -= 1
        tally.denials += 1
        system.denials += 1
        if counted == 1:
            tally.calls -= 1
            system.calls -= 1

    def _remember(self, origin: str, consumer: str | None, backfill: str | None, partition: int) -> None:
        """A decision read from the margin before the period: not counted, but remembered, so that its
        replay after a crash just past the period's start is dropped as the repeat it is (the period
        before counted the decision, and the record as provided)."""
        self._recent(self._decisions, partition).is_repeat(f"{origin}|{consumer}|{backfill}")
        if backfill is None:
            self._recent(self._records, partition).is_repeat(origin)

    def _record(self, tally: ClassTally, event: Mapping[str, Any]) -> None:
        tally.records += 1
        quality = _quality(event)
        if quality is not None:
            filled, fields, valid = quality
            tally.quality_records += 1
            tally.filled += filled
            tally.fields += fields
            tally.valid += int(valid)

    def _delivered(
        self,
        tally: ClassTally,
        code: str,
        consumer: str,
        event: Mapping[str, Any],
        at: dt.datetime,
        backfill: str | None,
        partition: int,
    ) -> None:
        system = self.systems[consumer]
        system.received += 1
        if backfill is None:
            tally.deliveries += 1
        if backfill is not None:
            new_call = (consumer, backfill) not in self._backfills
            self._backfills.add((consumer, backfill))
        elif event.get("mode") == "periodic":
            batch = (consumer, code, self._batch_key(code, at))
            new_call = batch not in self._batches
            self._batches.add(batch)
            self._batch_deliveries[batch] = self._batch_deliveries.get(batch, 0) + 1
            key = withdrawal_key(partition, event)
            if key is not None:
                self._delivered_in[key] = batch
        else:
            new_call = True
        if new_call:
            tally.calls += 1
            system.calls += 1

    def _windows(self, code: str, at: dt.datetime) -> tuple[Window, Window] | None:
        """For a periodic class: the window ``at`` falls in, and the one before it (which a release
        at ``at`` closed). Cached per class, as a release's events come in a run."""
        entry = self.catalogue.data_classes.get(code)
        if entry is None or entry.mode is not UpdateMode.PERIODIC:
            return None
        cached = self._release_window.get(code)
        if cached is None or at not in cached[0]:
            current = window_containing(entry.update, at)
            cached = (current, released_window(entry.update, at))
            self._release_window[code] = cached
        return cached

    def _batch_key(self, code: str, at: dt.datetime) -> str:
        # One release per class and window: the window of its time names the batch (a batch's
        # events carry no batch id).
        windows = self._windows(code, at)
        return windows[0].window_id if windows is not None else at.isoformat()

    def _released(self, code: str, at: dt.datetime) -> None:
        windows = self._windows(code, at)
        if windows is not None and at < windows[1].end + self.grace:
            self.classes[code].released_ends.add(windows[1].end.timestamp())
