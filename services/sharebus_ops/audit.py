"""Reads the audit trail: verifies its hash chains and signed anchors; answers who received what under which grant."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from sharebus_audit.anchors import Anchor, AnchorProblem, BadAnchor, check_anchors, open_anchors
from sharebus_audit.chain import BrokenLink, verify_partition
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Verifier
from sharebus_core.topic_reader import TopicReadError, read_topic


def _event(msg: Message) -> dict[str, Any] | None:
    try:
        event = json.loads(msg.value() or b"")
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


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

    @property
    def intact(self) -> bool:
        return self.broken is None and (self.anchors is None or self.anchors.ok)

    def __str__(self) -> str:
        if self.broken is None:
            lines = [f"audit chain intact: {self.events} events in {self.partitions} partition(s)"]
        else:
            lines = [f"audit chain BROKEN at {self.broken} (after checking {self.events} events)"]
        if self.anchors is not None:
            lines += self.anchors.lines()
        return "\n".join(lines)


def _anchor_report(
    access: KafkaAccess, topic: str, source: AnchorSource, logs: Mapping[int, Mapping[int, str | None]]
) -> AnchorReport:
    try:
        records = [(m.offset() or 0, m.key(), m.value()) for m in _committed(access, source.topic)]
    except TopicReadError:
        records = []  # no anchors topic: reported as "none found"
    anchors, bad = open_anchors(source.verifier, source.topic, topic, records)
    latest = max(anchors, key=lambda a: a.anchored_at) if anchors else None
    return AnchorReport(len(anchors), latest, tuple(bad), tuple(check_anchors(anchors, logs)))


def verify(access: KafkaAccess, topic: str, anchors: AnchorSource | None = None) -> Verification:
    """Walks every partition from its first event and reports the first broken link found; with
    ``anchors``, also checks every signed anchor against the partitions (truncated? re-chained?)."""
    by_partition: dict[int, list[tuple[int, dict[str, Any] | None]]] = defaultdict(list)
    for msg in _committed(access, topic):
        by_partition[msg.partition() or 0].append((msg.offset() or 0, _event(msg)))
    report = None
    if anchors is not None:
        logs = {p: {o: _hash(e) for o, e in events} for p, events in by_partition.items()}
        report = _anchor_report(access, topic, anchors, logs)
    checked = 0
    for partition in sorted(by_partition):
        events = by_partition[partition]
        broken = verify_partition(partition, events)
        if broken is not None:
            checked += sum(1 for o, _ in events if o < broken.offset)
            return Verification(checked, len(by_partition), broken, report)
        checked += len(events)
    return Verification(checked, len(by_partition), None, report)


def _hash(event: Mapping[str, Any] | None) -> str | None:
    found = event.get("hash") if event is not None else None
    return found if isinstance(found, str) else None


@dataclass(frozen=True, slots=True)
class Receipt:
    consumer: str
    grant_id: str | None
    records: int
    first: str
    last: str


def who_received(
    access: KafkaAccess, topic: str, data_class: str, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[Receipt]:
    """Who received records of ``data_class`` in [since, until), under which grant, how many, when."""
    rows: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for msg in _committed(access, topic):
        event = _event(msg)
        if event is None or event.get("data_class") != data_class or event.get("decision") != "deliver":
            continue
        at = dt.datetime.fromisoformat(event["time"])
        if (since is not None and at < since) or (until is not None and at >= until):
            continue
        rows[(event["consumer"], event.get("grant_id"))].append(event["time"])
    return [
        Receipt(consumer, grant_id, len(times), min(times), max(times))
        for (consumer, grant_id), times in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
