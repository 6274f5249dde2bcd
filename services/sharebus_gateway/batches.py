"""Periodic batches delivered to a system, read back from its delivery topic.

The router marks each record of a periodic release with ``sharebus-batch-id``, ``-period-start``,
``-period-end``, ``-count`` and ``-seq`` (0-based), and ends the batch with a marker record (header
``sharebus-batch-end: 1``, no value); see ``sharebus_router.release``.
At-least-once delivery may repeat a record: a batch keeps the first record of each ``seq``, and a
record whose id it already holds (a held record the router replayed into the window twice) is
dropped, counted in ``duplicates`` (it still counts towards ``count``, as the router counted it).

A request never reads the whole delivery topic: ``read_batches`` reads one page, from given positions
(an event id, as the feed's) or by default the newest records, and stops at ``max_records`` records or
``max_bytes`` bytes read, whichever comes first. The page says where it stopped (``next``) and whether
it stopped at a limit before the partitions' ends (``more``), so a caller pages on with ``?from=``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sharebus_core import headers as h
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.registry_client import registry_client
from sharebus_gateway import positions as pos

BATCH_ID = h.BATCH_ID
BATCH_PERIOD_START = h.BATCH_START
BATCH_PERIOD_END = h.BATCH_END_TIME
BATCH_COUNT = h.BATCH_COUNT
BATCH_SEQ = h.BATCH_SEQ
BATCH_END = h.BATCH_END


class BatchUnavailable(SharebusError, RuntimeError):
    pass


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


@dataclass
class Batch:
    batch_id: str
    data_class: str | None = None
    provider: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    count: int | None = None
    ended: bool = False
    records: dict[int, Message] = field(default_factory=dict, repr=False)
    duplicates: set[int] = field(default_factory=set)
    _record_ids: set[str] = field(default_factory=set, repr=False)

    @property
    def complete(self) -> bool:
        return self.ended and self.count is not None and len(self.records) + len(self.duplicates) >= self.count

    def summary(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "data_class": self.data_class,
            "provider": self.provider,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "count": self.count,
            "received": len(self.records),
            "duplicates": len(self.duplicates),
            "complete": self.complete,
        }

    def add(self, msg: Message, meta: dict[str, bytes]) -> None:
        self.data_class = self.data_class or h.text(meta, h.DATA_CLASS)
        self.provider = self.provider or h.text(meta, h.PROVIDER)
        self.period_start = self.period_start or h.text(meta, BATCH_PERIOD_START)
        self.period_end = self.period_end or h.text(meta, BATCH_PERIOD_END)
        self.count = self.count if self.count is not None else _int(h.text(meta, BATCH_COUNT))
        if h.text(meta, BATCH_END) == "1":
            self.ended = True
            return
        seq = _int(h.text(meta, BATCH_SEQ))
        if seq is None or msg.value() is None or seq in self.records or seq in self.duplicates:
            return
        record_id = h.text(meta, h.RECORD_ID)
        if record_id is not None and record_id in self._record_ids:
            self.duplicates.add(seq)
            return
        if record_id is not None:
            self._record_ids.add(record_id)
        self.records[seq] = msg


def collect_batches(messages: list[Message], system: str) -> dict[str, Batch]:
    """The batches among a delivery topic's records, in the order they started."""
    batches: dict[str, Batch] = {}
    for msg in messages:
        meta = h.header_map(msg.headers())
        batch_id = h.text(meta, BATCH_ID)
        if batch_id is None or h.text(meta, h.CONSUMER) not in (None, system):
            continue
        batches.setdefault(batch_id, Batch(batch_id)).add(msg, meta)
    return batches


@dataclass(frozen=True)
class BatchPage:
    batches: dict[str, Batch]
    # Per partition, the offset after the last record read: ``?from=`` for the next page.
    next: dict[int, int]
    # True when the read stopped at a limit before the partitions' ends as of the request.
    more: bool


@dataclass(frozen=True)
class PageLimits:
    max_records: int
    max_bytes: int
    timeout_s: float = 30.0


def read_batches(access: KafkaAccess, topic: str, system: str, start: str | None, limits: PageLimits) -> BatchPage:
    """One page of ``system``'s delivery topic, from ``start`` (an event id, or ``earliest``), by default its
    newest ``limits.max_records`` records. Raises ``positions.BadPosition`` or ``BatchUnavailable``."""
    consumer = access.consumer(
        {
            "group.id": access.private_group("batches"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # librdkafka prefetches up to 64 MB per consumer by default; a page needs far less.
            "queued.max.messages.kbytes": 2048,
        }
    )
    try:
        starts, ends = _page_bounds(consumer, topic, start, limits.max_records)
        messages, next_, more = _read_page(consumer, topic, starts, ends, limits)
    except KafkaException as exc:
        raise BatchUnavailable(f"the deliveries of {system} cannot be read now: {exc}") from exc
    finally:
        consumer.close()
    return BatchPage(collect_batches(messages, system), next_, more)


def _page_bounds(
    consumer: Consumer, topic: str, start: str | None, max_records: int
) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition, where the page starts and the partition's end as of now."""
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise BatchUnavailable(f"the delivery topic {topic} is not provisioned yet")
    requested = None if start in (None, pos.EARLIEST) else pos.decode(start or "")
    partitions = sorted(metadata.partitions)
    # By default the newest records, shared out between the partitions.
    tail = max(1, max_records // len(partitions))
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if start is None:
            offset = max(low, high - tail)
        elif requested is None:
            offset = low
        else:
            offset = requested.get(partition, low)
            if offset > high:
                raise pos.BadPosition(f"partition {partition} has no offset {offset} yet (its end is {high})")
            offset = max(offset, low)  # below the low watermark the records are gone (retention)
        starts[partition], ends[partition] = offset, high
    return starts, ends


def _read_page(
    consumer: Consumer, topic: str, starts: dict[int, int], ends: dict[int, int], limits: PageLimits
) -> tuple[list[Message], dict[int, int], bool]:
    next_ = dict(starts)
    waiting = {p for p, offset in starts.items() if offset < ends[p]}
    if waiting:
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(waiting)])
    messages: list[Message] = []
    size = 0
    deadline = time.monotonic() + limits.timeout_s
    while waiting and len(messages) < limits.max_records and size < limits.max_bytes:
        chunk = consumer.consume(min(500, limits.max_records - len(messages)), 0.2)
        if not chunk:
            if time.monotonic() >= deadline:
                raise BatchUnavailable(f"reading {topic} timed out; partitions {sorted(waiting)} unread")
            continue
        deadline = time.monotonic() + limits.timeout_s
        for msg in chunk:
            if len(messages) >= limits.max_records or size >= limits.max_bytes:
                break  # the rest of the chunk is the next page's
            partition, offset, error = msg.partition() or 0, msg.offset() or 0, msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise BatchUnavailable(f"reading {topic}[{partition}]: {error.str()}")
                # Transaction markers take offsets too: the end of partition is where the page ends.
                waiting.discard(partition)
                next_[partition] = max(next_[partition], min(offset, ends[partition]))
                continue
            if offset >= ends[partition]:
                waiting.discard(partition)  # written after the request began: the next page's
            if partition not in waiting:
                continue
            messages.append(msg)
            size += len(msg.value() or b"") + len(msg.key() or b"")
            next_[partition] = offset + 1
            if offset + 1 >= ends[partition]:
                waiting.discard(partition)
    return messages, next_, bool(waiting)


def batch_lines(batch: Batch, registry_url: str, registry_auth: str | None, topic: str) -> Iterator[dict[str, Any]]:
    """The batch's records in ``seq`` order, decoded (granted fields only, as delivered)."""
    deserializer = AvroDeserializer(registry_client(registry_url, registry_auth))
    for seq in sorted(batch.records):
        value = deserializer(batch.records[seq].value(), SerializationContext(topic, MessageField.VALUE))
        yield {"seq": seq, "value": value}
