"""Periodic batches delivered to a system, read back from its delivery topic.

The router marks each record of a periodic release with ``sharebus-batch-id``, ``-period-start``,
``-period-end``, ``-count`` and ``-seq`` (0-based), and ends the batch with a marker record (header
``sharebus-batch-end: 1``, no value); see ``sharebus_router.release``.
At-least-once delivery may repeat a record: a batch keeps the first record of each ``seq``, and a
record whose id it already holds (a held record the router replayed into the window twice) is
dropped, counted in ``duplicates`` (it still counts towards ``count``, as the router counted it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, Message
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sharebus_core import headers as h
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.registry_client import registry_client
from sharebus_core.topic_reader import TopicReadError, read_topic

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


def read_batches(access: KafkaAccess, topic: str, system: str) -> dict[str, Batch]:
    try:
        return collect_batches(read_topic(access, topic), system)
    except (TopicReadError, KafkaException) as exc:
        raise BatchUnavailable(f"the deliveries of {system} cannot be read now: {exc}") from exc


def batch_lines(batch: Batch, registry_url: str, registry_auth: str | None, topic: str) -> Iterator[dict[str, Any]]:
    """The batch's records in ``seq`` order, decoded (granted fields only, as delivered)."""
    deserializer = AvroDeserializer(registry_client(registry_url, registry_auth))
    for seq in sorted(batch.records):
        value = deserializer(batch.records[seq].value(), SerializationContext(topic, MessageField.VALUE))
        yield {"seq": seq, "value": value}
