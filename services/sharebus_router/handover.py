"""Where live delivery began for each (consumer, class, basis): the hand-over point of a backfill.

When a route gains a target that has never been live (a grant just approved, a subscription
new to the catalogue), the router records, per source partition, the first offset it will deliver
live. A backfill later replays exactly the offsets below it, so history and live delivery meet
without a gap or an overlap. Entries live on a compacted topic, keyed by ``handover_key``; every
router reads them at start, so a restart does not move a hand-over point.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Message

log = logging.getLogger(__name__)


def handover_key(consumer: str, data_class: str, grant_id: str | None) -> str:
    return f"{consumer}|{data_class}|{grant_id or 'subscription'}"


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
        self._entries: dict[str, Handover] = {}

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
            self._entries[entry.key] = entry
        return unreadable

    def get(self, key: str) -> Handover | None:
        return self._entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def record(
        self, consumer: str, data_class: str, grant_id: str | None, topic: str, live_from: dict[int, int]
    ) -> Handover:
        entry = Handover(consumer, data_class, grant_id, topic, live_from, dt.datetime.now(dt.UTC).isoformat())
        self._entries[entry.key] = entry
        return entry
