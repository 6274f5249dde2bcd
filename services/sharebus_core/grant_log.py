"""Grants as events on a compacted Kafka topic, keyed by grant id. The log is the source of truth;
every reader rebuilds its view of the grants from it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from pydantic import ValidationError

from sharebus_core.grants import Grant
from sharebus_core.produce import ProduceFailed, produce_confirmed
from sharebus_core.topic_reader import TopicReadError, read_topic

log = logging.getLogger(__name__)


class GrantLogError(RuntimeError):
    pass


def ensure_grant_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        return
    # One partition: every reader needs every grant, and the order of a grant's events is its history.
    spec = NewTopic(topic, num_partitions=1, replication_factor=-1, config={"cleanup.policy": "compact"})
    try:
        admin.create_topics([spec])[topic].result(timeout=30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def _decode(value: bytes | None) -> Grant | None:
    if value is None:
        return None
    try:
        return Grant.model_validate_json(value)
    except ValidationError:
        log.exception("skipping a grant event that does not parse")
        return None


def _assign_from_start(consumer: Consumer, topic: str) -> dict[int, int]:
    """Assigns every partition from the beginning; returns partition -> end offset at this moment."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    return ends


def _consumer(bootstrap: str) -> Consumer:
    # No group: a reader of the whole log, never a member sharing partitions.
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "sharebus-grant-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )


def read_grants(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[str, Grant]:
    """Every grant's latest state, read from the start of the log to its current end."""
    ensure_grant_topic(bootstrap, topic)
    grants: dict[str, Grant] = {}
    try:
        messages = read_topic(bootstrap, topic, timeout_s)
    except TopicReadError as exc:
        raise GrantLogError(str(exc)) from exc
    for msg in messages:
        grant = _decode(msg.value())
        if grant is None:
            grants.pop((msg.key() or b"").decode(), None)
        else:
            grants[grant.grant_id] = grant
    return grants


def write_grant(bootstrap: str, topic: str, grant: Grant) -> None:
    """Appends a grant's new state and returns once Kafka has acknowledged it."""
    ensure_grant_topic(bootstrap, topic)
    try:
        produce_confirmed(bootstrap, topic, grant.grant_id.encode(), grant.model_dump_json().encode())
    except ProduceFailed as exc:
        raise GrantLogError(str(exc)) from exc


class GrantFollower:
    """Follows the grants topic in a thread and calls ``on_grant`` for every event, in log order.

    ``caught_up`` is set once the log has been read up to its end as of start-up, so a service can
    refuse to be ready before it knows every grant.
    """

    def __init__(self, bootstrap: str, topic: str, on_grant: Callable[[Grant], None]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_grant = on_grant
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grant-follower", daemon=True)

    def start(self) -> GrantFollower:
        ensure_grant_topic(self.bootstrap, self.topic)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        consumer = _consumer(self.bootstrap)
        try:
            remaining = {p for p, end in _assign_from_start(consumer, self.topic).items() if end > 0}
            if not remaining:
                self.caught_up.set()
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.discard(msg.partition() or 0)
                        if not remaining:
                            self.caught_up.set()
                    else:
                        log.warning("grant follower: %s", error.str())
                    continue
                grant = _decode(msg.value())
                if grant is not None:
                    self.on_grant(grant)
        finally:
            consumer.close()
