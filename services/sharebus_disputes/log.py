"""Dispute events on ``<ns>.disputes``: append one, follow them into a view, or read them all.

The log is the source of truth; the view is a cache of it that every gateway rebuilds on start and
keeps current by following (``LogFollower``), so a step taken through one gateway is seen by all.
Disputes are few (a handful per thousand deliveries at worst), so the view is a dict in memory.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import Message
from pydantic import ValidationError

from sharebus_core.compacted_log import LogFollower
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import ProduceFailed, produce_confirmed
from sharebus_core.topic_reader import TopicMissing, TopicReadError, read_topic
from sharebus_core.topics import TopicNames
from sharebus_provision import dispute_topics, ensure_topics
from sharebus_rules.disputes import Dispute, DisputeEvent, fold

log = logging.getLogger(__name__)


class DisputeLogError(SharebusError, RuntimeError):
    """The disputes topic cannot be written or read now."""


def ensure_dispute_topic(access: KafkaAccess, topics: TopicNames) -> None:
    ensure_topics(access, dispute_topics(topics))


def write_event(access: KafkaAccess, topic: str, event: DisputeEvent) -> None:
    """Appends one event and returns once Kafka has acknowledged it."""
    key, value = event.encode()
    try:
        produce_confirmed(access, topic, key, value)
    except ProduceFailed as exc:
        raise DisputeLogError(str(exc)) from exc


def decode_event(msg: Message) -> DisputeEvent | None:
    """The event a message holds; None (logged) for one that is not a dispute event."""
    try:
        event = DisputeEvent.model_validate_json(msg.value() or b"")
    except ValidationError as exc:
        log.warning("skipping an unreadable dispute event at offset %s: %s", msg.offset(), exc.errors()[:1])
        return None
    key = msg.key()
    if key is not None and key.decode("utf-8", "replace") != event.dispute_id:
        log.warning("skipping dispute event %s written under key %r", event.dispute_id, key)
        return None
    return event


class DisputeView:
    """Every dispute's current state, folded from the log by a follower thread."""

    def __init__(self, access: KafkaAccess, topic: str) -> None:
        self._disputes: dict[str, Dispute] = {}
        self._lock = threading.Lock()
        self.follower = LogFollower(access, topic, self._on_message, name="dispute-follower")

    def _on_message(self, msg: Message) -> None:
        event = decode_event(msg)
        if event is not None:
            self.apply(event)

    def apply(self, event: DisputeEvent) -> None:
        """Folds one event in. The writer applies its own at once (read-your-writes); when the follower
        reads it back, ``fold`` sees a step that does not follow and leaves the dispute as it is."""
        with self._lock:
            folded = fold(self._disputes.get(event.dispute_id), event)
            if folded is not None:
                self._disputes[event.dispute_id] = folded

    def get(self, dispute_id: str) -> Dispute | None:
        with self._lock:
            return self._disputes.get(dispute_id)

    def all(self) -> list[Dispute]:
        with self._lock:
            return list(self._disputes.values())


def read_disputes(access: KafkaAccess, topic: str) -> tuple[dict[str, Dispute], list[DisputeEvent]]:
    """Every dispute and every event, read from the start of the log (the operator's CLI, the report)."""
    try:
        messages = read_topic(access, topic)
    except TopicMissing:
        return {}, []
    except TopicReadError as exc:
        raise DisputeLogError(str(exc)) from exc
    disputes: dict[str, Dispute] = {}
    events: list[DisputeEvent] = []
    for msg in messages:
        event = decode_event(msg)
        if event is None:
            continue
        events.append(event)
        folded = fold(disputes.get(event.dispute_id), event)
        if folded is not None:
            disputes[event.dispute_id] = folded
    return disputes, events
