"""The ``_schemas`` topic: read from the beginning into the state by a background thread, appended to by writes.

The reader assigns partition 0 itself (no consumer group membership, no offset commits): every
registry process replays the whole log on start. Progress is tracked as the reader's position, the
next offset it will apply; a write waits until that position has passed the offsets it produced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.cimpl import NewTopic

from sharebus_core.kafka import KafkaAccess
from sharebus_registry.errors import StoreTimeout, StoreUnavailable
from sharebus_registry.records import MalformedRecord, Record, decode, encode
from sharebus_registry.state import RegistryState

log = logging.getLogger(__name__)
_kafka_log = logging.getLogger("sharebus_registry.librdkafka")

_POLL_S = 0.2
_RETRY_S = 0.5


class KafkaSchemaLog:
    def __init__(self, access: KafkaAccess, topic: str, state: RegistryState, write_timeout_s: float = 30.0) -> None:
        self.access = access
        self.topic = topic
        self._state = state
        self._write_timeout_s = write_timeout_s
        self._position = 0
        self._progress = threading.Condition()
        self._stopping = threading.Event()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._thread: threading.Thread | None = None

    # --- start-up -----------------------------------------------------------------------------

    def open(self, timeout_s: float = 60.0) -> int:
        """Creates the topic if missing and returns once everything already in it is applied.

        Returns the number of offsets replayed. Raises ``StoreUnavailable`` when the broker does not
        allow that within ``timeout_s``, or when ``abort`` is called meanwhile.
        """
        try:
            return self._open(time.monotonic() + timeout_s)
        except KafkaException as exc:
            # Misconfiguration (a malformed access list...) surfaces here, from the client constructors.
            raise StoreUnavailable(f"cannot use the Kafka cluster at {self.access}: {exc}") from exc

    def _open(self, deadline: float) -> int:
        self._ensure_topic(deadline)
        consumer = self._consumer = self.access.consumer(
            {
                # librdkafka insists on a group id; with assign() and no commits it is never used.
                "group.id": self.access.private_group("schemas-reader"),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "logger": _kafka_log,
            }
        )
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        end = self._end_offset(consumer, deadline)
        self._producer = self.access.producer(
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
                "logger": _kafka_log,
            }
        )
        self._thread = threading.Thread(target=self._read, args=(consumer,), name="schemas-log-reader", daemon=True)
        self._thread.start()
        if not self._wait_position(end, deadline):
            raise StoreUnavailable(
                f"could not read topic {self.topic} up to offset {end} in time (reached {self._position})"
            )
        return end

    def _ensure_topic(self, deadline: float) -> None:
        # Always ask to create rather than look it up first: a metadata request for a missing topic
        # may auto-create it with the broker's defaults, which are not compacted.
        admin = self.access.admin({"logger": _kafka_log})
        new_topic = NewTopic(self.topic, num_partitions=1, replication_factor=-1, config={"cleanup.policy": "compact"})
        last_error = "no answer"
        while not self._stopping.is_set() and time.monotonic() < deadline:
            future = admin.create_topics([new_topic], request_timeout=5.0)[self.topic]
            # Waiting in small steps keeps a stop signal during start-up prompt.
            while not future.done() and not self._stopping.wait(_POLL_S):
                pass
            if not future.done():
                break
            try:
                future.result()
            except KafkaException as exc:
                error = exc.args[0]
                if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    return
                last_error = str(exc)
            else:
                log.info("created topic %s (1 partition, compacted)", self.topic)
                return
            self._stopping.wait(_RETRY_S)
        raise StoreUnavailable(f"could not create or find topic {self.topic} on {self.access}: {last_error}")

    def _end_offset(self, consumer: Consumer, deadline: float) -> int:
        last_error = "no answer"
        while not self._stopping.is_set() and time.monotonic() < deadline:
            try:
                _low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=5.0, cached=False)
                return int(high)
            except KafkaException as exc:
                # A topic created a moment ago may not have a leader yet.
                last_error = str(exc)
            self._stopping.wait(_RETRY_S)
        raise StoreUnavailable(f"could not read the end offset of topic {self.topic}: {last_error}")

    # --- reading ------------------------------------------------------------------------------

    def _read(self, consumer: Consumer) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    message = consumer.poll(_POLL_S)
                except KafkaException as exc:
                    log.warning("reading %s failed: %s", self.topic, exc)
                    continue
                if message is None:
                    continue
                error, offset = message.error(), message.offset()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and offset is not None:
                        # The end of the log may sit past offsets compaction removed, or past
                        # transaction markers: only the EOF event says we have read up to it.
                        self._advance(offset)
                    else:
                        log.warning("reading %s: %s", self.topic, error)
                    continue
                if offset is None:
                    continue
                self._apply(message.key(), message.value(), offset)
                self._advance(offset + 1)
        finally:
            consumer.close()

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        # One bad record must not stop the registry from following the log: an exception that
        # escaped here would end the reader thread, and every restart would stall on the same record.
        try:
            record = decode(key, value)
        except MalformedRecord as exc:
            log.warning("skipping malformed record at %s offset %d: %s", self.topic, offset, exc)
            return
        except Exception:
            log.exception("skipping the record at %s offset %d: it could not be decoded", self.topic, offset)
            return
        if record is None:
            return
        try:
            self._state.apply(record)
        except Exception:
            log.exception("could not apply the record at %s offset %d", self.topic, offset)

    def _advance(self, position: int) -> None:
        with self._progress:
            if position > self._position:
                self._position = position
                self._progress.notify_all()

    def _wait_position(self, position: int, deadline: float) -> bool:
        with self._progress:
            return (
                self._progress.wait_for(
                    lambda: self._position >= position or self._stopping.is_set(),
                    timeout=max(0.0, deadline - time.monotonic()),
                )
                and self._position >= position
            )

    # --- writing ------------------------------------------------------------------------------

    def append(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._producer is None or self._stopping.is_set():
            raise StoreUnavailable("the schema log is not open")
        deadline = time.monotonic() + self._write_timeout_s
        delivered: list[tuple[KafkaError | None, int]] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            offset = message.offset()
            delivered.append((error, -1 if error is not None or offset is None else offset))

        try:
            for record in records:
                key, value = encode(record)
                self._producer.produce(self.topic, key=key, value=value, partition=0, on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            raise StoreUnavailable(f"Error in the backend data store: could not write to {self.topic}: {exc}") from exc
        if self._producer.flush(self._write_timeout_s) > 0:
            # Drop what was not sent yet so a write answered as failed does not land later.
            self._producer.purge(in_queue=True, in_flight=False)
            raise StoreTimeout(f"Operation timed out: the write to {self.topic} was not acknowledged")
        errors = [str(error) for error, _ in delivered if error is not None]
        if errors:
            raise StoreUnavailable(f"Error in the backend data store: {'; '.join(errors)}")
        last = max(offset for _, offset in delivered)
        if not self._wait_position(last + 1, deadline):
            raise StoreTimeout(f"Operation timed out: offset {last} of {self.topic} was written but not read back")

    # --- shutdown -----------------------------------------------------------------------------

    def abort(self) -> None:
        """Makes a running ``open`` or ``append`` give up soon; safe from any thread."""
        self._stopping.set()
        with self._progress:
            self._progress.notify_all()

    def close(self) -> None:
        """Stops the reader and closes the clients; call it once ``open`` has returned or raised."""
        self.abort()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        elif self._consumer is not None:
            self._consumer.close()
        self._consumer = None
        if self._producer is not None:
            self._producer.flush(5.0)
            self._producer.close()
            self._producer = None
