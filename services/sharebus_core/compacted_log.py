"""The control topics whose log is the source of truth (grants, API keys): create, append, follow.

Every reader rebuilds its view from the log, so a change written by any process (the CLI, the
gateway) reaches every follower without a restart.

They are kept whole, never compacted (``CONTROL_TOPIC_CONFIG``). Readers take only a step forward of
an entry's history (``grant_log.GrantHistory``, ``sharebus_gateway.keys.KeyHistory``), which holds
only while the history is there: compaction would leave a replayed approval as a revoked grant's only
record for a reader starting afresh. A grant's events are also the record of when it was applied for
and answered (``sharebus report``). Grants and keys are few and change rarely, so the whole log stays
small.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Self

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.cimpl import NewTopic

from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import ProduceFailed, Written, produce_confirmed

log = logging.getLogger(__name__)


class CompactedLogError(SharebusError, RuntimeError):
    pass


# The broker, not the producer, stamps each record with its append time: readers compare it with the
# signing time inside the record, so a signed event copied and written again later is refused. Every
# event is kept, for ever (see the module's doc).
CONTROL_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "message.timestamp.type": "LogAppendTime"}


def ensure_compacted_topic(access: KafkaAccess, topic: str) -> None:
    admin = access.admin()
    if topic in admin.list_topics(timeout=10).topics:
        return
    # One partition: every reader needs every entry, and the order of an entry's events is its history.
    spec = NewTopic(topic, num_partitions=1, replication_factor=-1, config=CONTROL_TOPIC_CONFIG)
    try:
        admin.create_topics([spec])[topic].result(timeout=30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def append(access: KafkaAccess, topic: str, key: str, value: bytes) -> Written:
    """Appends one entry and returns where, once Kafka has acknowledged it."""
    ensure_compacted_topic(access, topic)
    try:
        return produce_confirmed(access, topic, key.encode(), value)
    except ProduceFailed as exc:
        raise CompactedLogError(str(exc)) from exc


def _assign(consumer: Consumer, topic: str, positions: dict[int, int]) -> dict[int, int]:
    """Assigns every partition from ``positions`` (else the beginning); returns partition -> end offset now."""
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        # Never "caught up on nothing": a topic made later would not be followed. The follower tries again.
        raise CompactedLogError(f"topic {topic} does not exist (yet)")
    partitions = metadata.partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, positions.get(p, OFFSET_BEGINNING)) for p in partitions])
    return ends


class LogFollower:
    """Follows a log topic in a thread and calls ``on_record(message)`` for every entry, in log order.

    ``caught_up`` is set once the log has been read up to its end as of start-up, so a service can
    refuse to be ready before it knows every entry.

    Supervised: when following fails (Kafka, or ``on_record`` raising), ``caught_up`` is cleared and
    the follower starts again after a back-off, from the record that failed, so no entry is skipped
    and none is applied twice. A thread that ends some other way is started again by
    ``ensure_running``. ``up`` (running and caught up) is what a readiness check asks; ``error`` says
    why the last attempt failed, until the follower has caught up again.

    ``wait_past(written)`` lets a writer read its own write: it returns once ``on_record`` has been
    called for the record Kafka acknowledged (``produce.Written``), or False after the timeout.
    """

    def __init__(
        self,
        access: KafkaAccess,
        topic: str,
        on_record: Callable[[Message], None],
        name: str,
        restart_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        ensure_topic: bool = True,
    ) -> None:
        """``ensure_topic=False``: a topic provisioning makes (not a control topic), followed once it exists."""
        self.access = access
        self.ensure_topic = ensure_topic
        self.topic = topic
        self.on_record = on_record
        self.name = name
        self.restart_backoff_s = restart_backoff_s
        self.max_backoff_s = max_backoff_s
        self.caught_up = threading.Event()
        self.restarts = 0
        self.error: str | None = None
        # partition -> the next offset to hand to on_record (advanced only after it returned).
        self._positions: dict[int, int] = {}
        # Notified each time a position moves, for writers waiting on their record (wait_past).
        self._moved = threading.Condition()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name=name, daemon=True)

    @property
    def up(self) -> bool:
        return self._thread.is_alive() and self.caught_up.is_set()

    def wait_past(self, written: Written, timeout_s: float) -> bool:
        """True once the record at ``written`` has been handed to ``on_record``; False after ``timeout_s``."""
        partition, offset = written
        with self._moved:
            return self._moved.wait_for(lambda: self._positions.get(partition, 0) > offset, timeout_s)

    def wait_error(self, timeout_s: float) -> str | None:
        """The reader's last error, waiting up to ``timeout_s`` for one (None if it has none)."""
        with self._moved:
            self._moved.wait_for(lambda: self.error is not None, timeout_s)
            return self.error

    def _caught_up_now(self) -> None:
        self.error = None
        self.caught_up.set()

    def start(self) -> Self:
        if self.ensure_topic:
            ensure_compacted_topic(self.access, self.topic)
        self._thread.start()
        return self

    def ensure_running(self) -> bool:
        """Starts the thread again if it has died; True when it had to."""
        with self._lock:
            if self._stop.is_set() or self._thread.is_alive() or self._thread.ident is None:
                return False
            self.restarts += 1
            log.error("%s follower thread had died; starting it again", self.topic)
            self._thread = threading.Thread(target=self._supervise, name=self.name, daemon=True)
            self._thread.start()
            return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _supervise(self) -> None:
        backoff = self.restart_backoff_s
        try:
            while not self._stop.is_set():
                try:
                    self._follow()
                except Exception as exc:
                    self.caught_up.clear()
                    with self._moved:
                        self.error = f"{type(exc).__name__}: {exc}"
                        self._moved.notify_all()
                    self.restarts += 1
                    log.exception("%s follower failed; starting again in %.1f s", self.topic, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
        finally:
            # However the thread ends, nobody may take the view for a followed one any more.
            self.caught_up.clear()

    def _follow(self) -> None:
        # No group: a reader of the whole log, never a member sharing partitions.
        consumer = self.access.consumer(
            {
                "group.id": self.access.private_group(self.name),
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            ends = _assign(consumer, self.topic, self._positions)
            remaining = {p for p, end in ends.items() if end > self._positions.get(p, 0)}
            if not remaining:
                self._caught_up_now()
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.discard(msg.partition() or 0)
                        if not remaining:
                            self._caught_up_now()
                    else:
                        log.warning("%s follower: %s", self.topic, error.str())
                    continue
                self.on_record(msg)
                with self._moved:
                    self._positions[msg.partition() or 0] = (msg.offset() or 0) + 1
                    self._moved.notify_all()
        finally:
            consumer.close()
