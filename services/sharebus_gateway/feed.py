"""One feed connection: a system's delivery topic read from explicit positions, decoded, and handed to
the client through a bounded queue.

- Positions, not consumer groups: each connection assigns the partitions and seeks, and the client
  holds its position (the event id). Nothing is committed, so connections never disturb each other.
- Bounded memory: the reader blocks while the queue is full. A client that takes nothing for
  ``stall_timeout_s`` while the queue is full (or whose socket takes that long to accept one event)
  is disconnected with reason ``slow_client``.
- Each connection reads in a thread of its own, so a blocking ``consume`` never holds the event loop.
- A record is decoded only with a schema id registered for its class on the delivery topic, as the SDK's
  subscriber decodes (``sharebus_core.schema_subjects``); a record that cannot be decoded is logged and
  skipped, and the feed goes on past it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Message, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sharebus_core import headers as h
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.recent_ids import RecentIds
from sharebus_core.registry_client import registry_client
from sharebus_core.schema_subjects import SchemaSubjectMismatch, SchemaSubjects
from sharebus_core.topics import TopicNames
from sharebus_gateway import positions as pos
from sharebus_gateway.batches import BATCH_ID
from sharebus_gateway.json_avro import to_json

log = logging.getLogger(__name__)


class FeedSettings(Protocol):
    """What a feed needs of its service's settings (the gateway's, the portal's)."""

    @property
    def kafka(self) -> KafkaAccess: ...
    @property
    def namespace(self) -> str: ...
    @property
    def registry_url(self) -> str: ...
    @property
    def registry_auth(self) -> str | None: ...
    @property
    def feed_dedupe_window(self) -> int: ...
    @property
    def feed_queue_size(self) -> int: ...
    @property
    def feed_stall_timeout_s(self) -> float: ...
    @property
    def feed_poll_records(self) -> int: ...


class FeedUnavailable(SharebusError, RuntimeError):
    """The delivery topic cannot be read (not provisioned, or the broker is unreachable)."""


@dataclass(frozen=True, slots=True)
class FeedEvent:
    id: str
    data: dict[str, Any]


def delivery_data(msg: Message, value: Mapping[str, Any]) -> dict[str, Any]:
    meta = h.header_map(msg.headers())
    key = msg.key()
    return {
        "data_class": h.text(meta, h.DATA_CLASS),
        "provider": h.text(meta, h.PROVIDER),
        "grant_id": h.text(meta, h.GRANT_ID),
        "trace_id": h.text(meta, h.TRACE_ID),
        "record_id": h.text(meta, h.RECORD_ID),
        "corrects": h.text(meta, h.CORRECTS),
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "key_withheld": h.text(meta, h.KEY_WITHHELD),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "value": to_json(dict(value)),
    }


def is_realtime_delivery(msg: Message, system: str) -> bool:
    """A record the router delivered to this system outside a periodic batch (those are served as batches)."""
    meta = h.header_map(msg.headers())
    return (
        msg.value() is not None and h.text(meta, h.CONSUMER) == system and h.DATA_CLASS in meta and BATCH_ID not in meta
    )


class FeedSource:
    """Reads and decodes one system's deliveries from given positions. Used from one thread only."""

    def __init__(self, settings: FeedSettings, topic: str, system: str) -> None:
        self.topic = topic
        self.system = system
        self.positions: dict[int, int] = {}
        # Repeats (same record id) are dropped, the position still moves past them.
        self.seen = RecentIds(settings.feed_dedupe_window)
        registry = registry_client(settings.registry_url, settings.registry_auth)
        self._deserializer = AvroDeserializer(registry)
        self._subjects = SchemaSubjects(registry, TopicNames(settings.namespace), system)
        self._consumer = settings.kafka.consumer(
            {
                # Required by librdkafka, but never joined or committed: positions are the client's.
                "group.id": settings.kafka.private_group("feed"),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                # librdkafka prefetches up to 64 MB per consumer by default; one connection needs far less.
                "queued.max.messages.kbytes": 2048,
            }
        )

    def open(self, start: str) -> None:
        """Seeks to ``start``: ``earliest``, ``latest`` or an event id. Raises BadPosition or FeedUnavailable."""
        requested = None if start in (pos.EARLIEST, pos.LATEST) else pos.decode(start)
        metadata = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise FeedUnavailable(f"the delivery topic of {self.system} is not provisioned yet")
        for partition in sorted(metadata.partitions):
            low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
            if requested is None:
                offset = high if start == pos.LATEST else low
            else:
                # A partition the client has not seen yet starts at its beginning.
                offset = requested.get(partition, low)
                if offset > high:
                    raise pos.BadPosition(f"partition {partition} has no offset {offset} yet (its end is {high})")
                # Below the low watermark the records are gone (retention): resume at the oldest kept.
                offset = max(offset, low)
            self.positions[partition] = offset
        self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in self.positions.items()])

    def read(self, max_records: int, timeout_s: float) -> list[FeedEvent]:
        events: list[FeedEvent] = []
        for msg in self._consumer.consume(max_records, timeout_s):
            error = msg.error()
            partition, offset = msg.partition(), msg.offset()
            if error is not None or partition is None or offset is None:
                if error is not None:
                    log.warning("feed of %s: %s", self.system, error.str())
                continue
            self.positions[partition] = offset + 1
            if not is_realtime_delivery(msg, self.system):
                continue
            if self.seen.is_repeat(h.identity_in(h.header_map(msg.headers()))):
                continue
            # The position moves past a record that cannot be decoded: it would stall the feed forever.
            try:
                value = self._decode(msg)
            except SchemaSubjectMismatch as exc:
                where = (self.system, self.topic, partition, offset)
                log.warning("feed of %s: not decoding %s[%s]@%s; skipped: %s", *where, exc)
                continue
            except Exception:
                log.exception(
                    "feed of %s: cannot decode %s[%s]@%s; skipped", self.system, self.topic, partition, offset
                )
                continue
            if isinstance(value, dict):
                events.append(FeedEvent(pos.encode(self.positions), delivery_data(msg, value)))
        return events

    def _decode(self, msg: Message) -> Any:
        """Decodes with the writer schema only when its id is registered for the record's class on this topic."""
        # Unlike the SDK's subscriber, no wait for a schema on its way: this thread serves a client live.
        self._subjects.check_asking_again(msg.value(), h.text(h.header_map(msg.headers()), h.DATA_CLASS) or "")
        return self._deserializer(msg.value(), SerializationContext(self.topic, MessageField.VALUE))

    def close(self) -> None:
        self._consumer.close()


SLOW_CLIENT = "slow_client"


class FeedSession:
    """Runs a FeedSource into a bounded queue until stopped; ``stalled`` says the client fell behind."""

    def __init__(self, source: FeedSource, settings: FeedSettings) -> None:
        self.source = source
        self.settings = settings
        self.queue: asyncio.Queue[FeedEvent] = asyncio.Queue(maxsize=settings.feed_queue_size)
        self.stalled = asyncio.Event()
        self._stop = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"feed-{source.system}")
        self._task: asyncio.Task[None] | None = None

    async def open(self, start: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self.source.open, start)
        except BaseException:
            await self.close()
            raise
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            events = await loop.run_in_executor(self._executor, self.source.read, self.settings.feed_poll_records, 0.5)
            for event in events:
                try:
                    await asyncio.wait_for(self.queue.put(event), self.settings.feed_stall_timeout_s)
                except TimeoutError:
                    self.stalled.set()
                    return

    async def next(self, timeout_s: float) -> FeedEvent | None:
        """The next event, or None after ``timeout_s`` with nothing to send (time for a keep-alive)."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        loop = asyncio.get_running_loop()
        # After any read still running in the thread: the consumer is used from that thread only.
        await loop.run_in_executor(self._executor, self.source.close)
        self._executor.shutdown(wait=False)
