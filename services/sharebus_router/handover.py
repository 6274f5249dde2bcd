"""Where live delivery began for each (consumer, class, basis): the hand-over point of a backfill.

When a route gains a target that has never been live (a grant just approved, a subscription
new to the catalogue), the router records, per source partition, the first offset it will deliver
live. A backfill later replays exactly the offsets below it, so history and live delivery meet
without a gap or an overlap. Entries live on a compacted topic. With several router workers each
partition's point is written by the worker that owns the partition (``live_points.py``), keyed
per (consumer, class, basis, partition); an older entry holding every partition under the key
without one is read the same way. Every router reads them, so a restart does not move a point.

A point is sent through the data path's producer, counted with the records routed after it
(``acknowledgements.py``): no offset past a point is committed, at a revocation or periodically, before
Kafka has acknowledged the point, so the next owner of the partition reads it when it claims the
partition. Two workers can write a point for the same partition only when one was killed before its
point was acknowledged and the next owner found none: the next owner's is then the lower or equal one
(its committed offset is not past the records the killed one routed after its point), and the lowest
point is the one kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Message

log = logging.getLogger(__name__)


def handover_key(consumer: str, data_class: str, grant_id: str | None) -> str:
    return f"{consumer}|{data_class}|{grant_id or 'subscription'}"


def partition_key(consumer: str, data_class: str, grant_id: str | None, partition: int) -> str:
    """The ledger record's key for one partition's point."""
    return f"{handover_key(consumer, data_class, grant_id)}|{partition}"


@dataclass(frozen=True, slots=True)
class Handover:
    consumer: str
    data_class: str
    grant_id: str | None
    topic: str
    # partition -> first offset delivered live
    live_from: dict[int, int]
    at: str

    @property
    def key(self) -> str:
        return handover_key(self.consumer, self.data_class, self.grant_id)

    @property
    def record_key(self) -> str:
        """One partition's point has a key of its own, so that compaction keeps every partition's."""
        if len(self.live_from) == 1:
            [partition] = self.live_from
            return partition_key(self.consumer, self.data_class, self.grant_id, partition)
        return self.key

    def to_json(self) -> bytes:
        body = {
            "consumer": self.consumer,
            "data_class": self.data_class,
            "grant_id": self.grant_id,
            "topic": self.topic,
            "live_from": {str(p): o for p, o in sorted(self.live_from.items())},
            "at": self.at,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Handover:
        data = json.loads(raw)
        live_from = {int(p): int(o) for p, o in data["live_from"].items()}
        return cls(data["consumer"], data["data_class"], data["grant_id"], data["topic"], live_from, data["at"])


class HandoverLedger:
    def __init__(self) -> None:
        # target key -> its points on every partition recorded so far (merged, the lowest kept)
        self._entries: dict[str, Handover] = {}
        # (topic, partition) -> target keys with a point there
        self._on: dict[tuple[str, int], set[str]] = {}
        # Target keys written whole by a lone router (every partition in one record): complete as they are.
        self.whole: set[str] = set()
        # Target key -> when its newest record was written.
        self._newest: dict[str, dt.datetime] = {}

    def apply(self, entry: Handover) -> None:
        """Merges one record: each partition keeps the lowest point written for it."""
        if len(entry.live_from) != 1:
            self.whole.add(entry.key)
        current = self._entries.get(entry.key)
        merged = dict(current.live_from) if current is not None else {}
        for partition, offset in entry.live_from.items():
            merged[partition] = min(offset, merged.get(partition, offset))
            self._on.setdefault((entry.topic, partition), set()).add(entry.key)
        at = current.at if current is not None else entry.at
        self._entries[entry.key] = Handover(entry.consumer, entry.data_class, entry.grant_id, entry.topic, merged, at)
        with contextlib.suppress(ValueError):  # a record without a readable time tells nothing of when
            written = dt.datetime.fromisoformat(entry.at)
            newest = self._newest.get(entry.key)
            if written.tzinfo is not None and (newest is None or written > newest):
                self._newest[entry.key] = written

    def newest(self, key: str) -> dt.datetime | None:
        """When the target's newest point was written (by its writer's clock), if known."""
        return self._newest.get(key)

    def has(self, key: str, partition: int) -> bool:
        entry = self._entries.get(key)
        return entry is not None and partition in entry.live_from

    def on_partition(self, topic: str, partition: int) -> list[Handover]:
        """The targets with a point on this partition."""
        return [self._entries[key] for key in sorted(self._on.get((topic, partition), ()))]

    def load(self, messages: Iterable[Message]) -> int:
        """Reads the entries; returns how many records were unreadable (skipped, never fatal).

        An unreadable record must not keep the router from starting. Its key then has no hand-over
        point, so the target's next route install records a new one at the current position: a
        later backfill may repeat records delivered live since (the SDK drops repeats by record id),
        but never misses one.
        """
        unreadable = 0
        for msg in messages:
            value = msg.value()
            if msg.error() is not None or value is None:
                continue
            try:
                entry = Handover.from_json(value)
            except (ValueError, KeyError, TypeError, AttributeError):
                unreadable += 1
                log.exception("skipping an unreadable hand-over record at offset %s", msg.offset())
                continue
            self.apply(entry)
        return unreadable

    def get(self, key: str) -> Handover | None:
        return self._entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def record(
        self, consumer: str, data_class: str, grant_id: str | None, topic: str, live_from: dict[int, int]
    ) -> Handover:
        entry = Handover(consumer, data_class, grant_id, topic, live_from, dt.datetime.now(dt.UTC).isoformat())
        self.apply(entry)
        return entry
