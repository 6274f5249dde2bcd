"""Reads the audit trail: verifies its hash chains, Merkle roots and signed anchors; proves one delivery;
answers who received what under which grant (a delivery withdrawn later is none). The record format is
``sharebus_core.audit_trail``'s."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import time as wall_clock
from typing import Any

from confluent_kafka import Message, TopicPartition

from sharebus_audit.anchors import Anchor, AnchorProblem, BadAnchor, check_anchors, open_anchors
from sharebus_audit.retention import removal_problem, stated_retention
from sharebus_audit.withdrawals import DELIVER, WITHDRAW, WithdrawalKey, withdrawal_key
from sharebus_core.audit_trail import (
    GENESIS,
    BrokenLink,
    decode_record,
    events_of,
    verify_links,
)
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Verifier
from sharebus_core.topic_reader import TopicMissing, partition_starts, read_topic


def _committed(access: KafkaAccess, topic: str) -> list[Message]:
    return read_topic(access, topic, isolation="read_committed")


@dataclass(frozen=True, slots=True)
class AnchorSource:
    """Where the signed anchors of the audit topic are, and the auditor's public key to check them."""

    topic: str
    verifier: Verifier


@dataclass(frozen=True, slots=True)
class AnchorReport:
    anchors: int
    latest: Anchor | None
    bad: tuple[BadAnchor, ...]
    problems: tuple[AnchorProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.bad and not self.problems

    def lines(self) -> list[str]:
        if self.anchors == 0 and not self.bad:
            return ["anchors: none found, so truncation and re-chaining cannot be checked"]
        newest = f"; newest {self.latest.when}" if self.latest is not None else ""
        head = f"anchors: {self.anchors} signed anchor(s) checked{newest}"
        if self.ok:
            return [f"{head}: every anchored head is in place (not truncated, not re-chained)"]
        return [head, *(f"  {p}" for p in self.problems), *(f"  {b}" for b in self.bad)]


@dataclass(frozen=True, slots=True)
class Verification:
    events: int
    partitions: int
    broken: BrokenLink | None
    anchors: AnchorReport | None = None
    # (partition, offset): partitions whose kept chain starts at offset, the records before it removed by
    # the retention the auditor's anchors state (sharebus_audit.retention).
    expired: tuple[tuple[int, int], ...] = ()

    @property
    def intact(self) -> bool:
        return self.broken is None and (self.anchors is None or self.anchors.ok)

    def __str__(self) -> str:
        if self.broken is None:
            lines = [f"audit chain intact: {self.events} events in {self.partitions} partition(s)"]
        else:
            lines = [f"audit chain BROKEN at {self.broken} (after checking {self.events} events)"]
        lines += [
            f"partition {p} starts at offset {o} (earlier events removed by retention; each link from it is checked)"
            for p, o in self.expired
        ]
        if self.anchors is not None:
            lines += self.anchors.lines()
        return "\n".join(lines)


def anchor_records(access: KafkaAccess, source: AnchorSource) -> list[tuple[int, bytes | None, bytes | None]]:
    """The anchors topic's committed (offset, key, value) records. A missing topic holds none (a new bus:
    reported as "none found"); any other failure to read it raises ``TopicReadError``, never "none"."""
    try:
        return [(m.offset() or 0, m.key(), m.value()) for m in _committed(access, source.topic)]
    except TopicMissing:
        return []


def _anchor_report(
    opened: tuple[list[Anchor], list[BadAnchor]],
    logs: Mapping[int, Mapping[int, str | None]],
    expired: Mapping[int, int],
) -> AnchorReport:
    anchors, bad = opened
    latest = max(anchors, key=lambda a: a.anchored_at) if anchors else None
    return AnchorReport(len(anchors), latest, tuple(bad), tuple(check_anchors(anchors, logs, expired)))


def partitions(access: KafkaAccess, topic: str) -> dict[int, list[tuple[int, dict[str, Any] | None]]]:
    by_partition: dict[int, list[tuple[int, dict[str, Any] | None]]] = defaultdict(list)
    for msg in _committed(access, topic):
        by_partition[msg.partition() or 0].append((msg.offset() or 0, decode_record(msg.value())))
    return by_partition


LogStart = Callable[[int], int]


def _log_start(access: KafkaAccess, topic: str) -> LogStart:
    """The partition's log start offset, asked only for a partition whose chain does not start at the genesis."""
    return lambda partition: partition_starts(access, [TopicPartition(topic, partition)])[(topic, partition)]


def _start_after_removal(
    partition: int,
    records: list[tuple[int, dict[str, Any] | None]],
    anchors: list[Anchor],
    log_start: LogStart,
    now: float,
) -> tuple[str, BrokenLink | None]:
    """What the partition's first kept record must link to (its ``prev_hash`` when the records before
    it were removed by the retention the anchors state, else the genesis), or why it cannot be so."""
    if not records:
        return GENESIS, None
    offset, first = records[0]
    prev = first.get("prev_hash") if first is not None else None
    if not isinstance(prev, str) or prev == GENESIS:
        return GENESIS, None
    if log_start(partition) == 0:
        # Nothing was removed: a first record linking elsewhere was put there (verify_links says so).
        return GENESIS, None
    problem = removal_problem(partition, offset, prev, anchors, stated_retention(anchors), now)
    return (GENESIS, BrokenLink(partition, offset, problem)) if problem is not None else (prev, None)


def _emptied(
    kept: set[int], anchors: list[Anchor], log_start: LogStart, now: float, expired: dict[int, int]
) -> BrokenLink | None:
    """Partitions the anchors name that hold no record any more: emptied by the retention (added to
    ``expired``) when it may have removed every record there, judged as for a first kept record that
    links to the newest anchored head; else the first such partition's problem. A partition that
    never lost a record (log start 0) stays the anchors' "truncated" finding."""
    for partition in sorted({h.partition for a in anchors for h in a.heads} - kept):
        start = log_start(partition)
        if start == 0:
            continue
        last = max((h for a in anchors for h in a.heads if h.partition == partition), key=lambda h: h.offset)
        problem = removal_problem(partition, start, last.hash, anchors, stated_retention(anchors), now)
        if problem is not None:
            return BrokenLink(partition, start, problem)
        expired[partition] = start
    return None


def verify_read(
    access: KafkaAccess,
    topic: str,
    anchors: AnchorSource | None,
    by_partition: Mapping[int, list[tuple[int, dict[str, Any] | None]]],
    log_start: LogStart | None = None,
    clock: Callable[[], float] = wall_clock,
) -> Verification:
    opened = open_anchors(anchors.verifier, anchors.topic, topic, anchor_records(access, anchors)) if anchors else None
    valid = opened[0] if opened is not None else []
    starts = log_start or _log_start(access, topic)
    now = clock()
    checked, broken, expired = 0, None, dict[int, int]()
    for partition in sorted(by_partition):
        records = by_partition[partition]
        first_prev, broken = _start_after_removal(partition, records, valid, starts, now)
        if broken is not None:
            break
        if first_prev != GENESIS:
            expired[partition] = records[0][0]
        events, broken = verify_links(partition, records, first_prev)
        checked += events
        if broken is not None:
            break
    if broken is None:
        broken = _emptied(set(by_partition), valid, starts, now, expired)
    report = None
    if opened is not None:
        logs = {p: {o: _hash(r) for o, r in records} for p, records in by_partition.items()}
        report = _anchor_report(opened, logs, expired)
    return Verification(checked, len(by_partition), broken, report, tuple(sorted(expired.items())))


def verify(access: KafkaAccess, topic: str, anchors: AnchorSource | None = None) -> Verification:
    """Walks every partition from its first record, checking each block's events against its Merkle
    root and each link against the one before, and reports the first broken link found; with
    ``anchors``, also checks every signed anchor against the partitions (truncated? re-chained?).

    A partition whose first kept record links past the genesis because the records before it were
    removed from the log is checked from that record on, when the retention the auditor's anchors sign
    allows that removal (``sharebus_audit.retention``); otherwise that is its broken link."""
    return verify_read(access, topic, anchors, partitions(access, topic))


def _hash(record: Mapping[str, Any] | None) -> str | None:
    found = record.get("hash") if record is not None else None
    return found if isinstance(found, str) else None


@dataclass(frozen=True, slots=True)
class Receipt:
    consumer: str
    grant_id: str | None
    records: int
    first: str
    last: str


def _delivery(event: Mapping[str, Any]) -> tuple[dt.datetime, tuple[str, str | None, str]] | None:
    """A deliver event's time, and its (consumer, grant, time as written); None for an event the auditor
    did not write (a time that is not ISO 8601 with its offset, a consumer that is not text), so one
    altered since (``sharebus audit verify`` reports it BROKEN): skipped, as a record that is not an
    audit record is, not a traceback."""
    time, consumer, grant_id = event.get("time"), event.get("consumer"), event.get("grant_id")
    if not isinstance(time, str) or not isinstance(consumer, str) or not isinstance(grant_id, str | None):
        return None
    try:
        at = dt.datetime.fromisoformat(time)
    except ValueError:
        return None
    if at.tzinfo is None:
        return None  # not comparable with --since and --until, which are in UTC
    return at, (consumer, grant_id, time)


def who_received(
    access: KafkaAccess, topic: str, data_class: str, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[Receipt]:
    """Who received records of ``data_class`` in [since, until), under which grant, how many, when.

    A delivery withdrawn later in the trail (``withdraw``: decided, then not made; whenever the withdrawal
    was chained) was not received and is not counted (``sharebus_audit.withdrawals``)."""
    rows: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    # The deliveries a withdrawal may still undo, by key: (consumer, grant, time) each.
    pending: dict[WithdrawalKey, list[tuple[str, str | None, str]]] = defaultdict(list)
    for msg in _committed(access, topic):
        partition = msg.partition() or 0
        for event in events_of(decode_record(msg.value())):
            decision = event.get("decision")
            if event.get("data_class") != data_class or decision not in (DELIVER, WITHDRAW):
                continue
            key = withdrawal_key(partition, event)
            if decision == WITHDRAW:
                if key is not None:
                    pending.pop(key, None)  # the deliveries of its key chained before it were not made
                continue
            delivery = _delivery(event)
            if delivery is None:
                continue
            at, receipt = delivery
            if (since is not None and at < since) or (until is not None and at >= until):
                continue
            if key is None:
                rows[receipt[:2]].append(receipt[2])
            else:
                pending[key].append(receipt)
    for made in pending.values():
        for consumer, grant_id, time in made:
            rows[(consumer, grant_id)].append(time)
    return [
        Receipt(consumer, grant_id, len(times), min(times), max(times))
        for (consumer, grant_id), times in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
