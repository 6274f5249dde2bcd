"""Reads the audit trail: verifies its hash chains, and answers who received what under which grant."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from sharebus_audit.chain import BrokenLink, verify_partition
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import read_topic


def _event(msg: Message) -> dict[str, Any] | None:
    try:
        event = json.loads(msg.value() or b"")
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _committed(access: KafkaAccess, topic: str) -> list[Message]:
    return read_topic(access, topic, isolation="read_committed")


@dataclass(frozen=True, slots=True)
class Verification:
    events: int
    partitions: int
    broken: BrokenLink | None

    def __str__(self) -> str:
        if self.broken is None:
            return f"audit chain intact: {self.events} events in {self.partitions} partition(s)"
        return f"audit chain BROKEN at {self.broken} (after checking {self.events} events)"


def verify(access: KafkaAccess, topic: str) -> Verification:
    """Walks every partition from its first event; reports the first broken link found."""
    by_partition: dict[int, list[tuple[int, dict[str, Any] | None]]] = defaultdict(list)
    for msg in _committed(access, topic):
        by_partition[msg.partition() or 0].append((msg.offset() or 0, _event(msg)))
    checked = 0
    for partition in sorted(by_partition):
        events = by_partition[partition]
        broken = verify_partition(partition, events)
        if broken is not None:
            return Verification(checked + sum(1 for o, _ in events if o < broken.offset), len(by_partition), broken)
        checked += len(events)
    return Verification(checked, len(by_partition), None)


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
