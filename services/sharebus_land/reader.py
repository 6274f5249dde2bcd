"""Reads one system's delivery topic from positions the database gives, never from a consumer group.

The consumer is assigned every partition of the topic and seeks to the stored offsets; it never
commits to Kafka (its group id only satisfies librdkafka and lies under the system's own prefix).
Values are decoded with their writer schema from the registry: the delivered schema is what the
table follows, so the reader hands it out with each record.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka import OFFSET_BEGINNING, KafkaException, Message, TopicPartition

from sharebus_core import headers as h
from sharebus_core.principals import Principals
from sharebus_core.registry_client import registry_client
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_core.wire import unframe
from sharebus_land.errors import LandError
from sharebus_sdk.batches import BatchInfo
from sharebus_sdk.identity import ClientIdentity

Position = tuple[str, int, int]
log = logging.getLogger("sharebus.land")
# Told (partition, first offset lost, how many) when retention removed offsets before they were landed.
LostToRetention = Callable[[int, int, int], None]


@dataclass(frozen=True, slots=True)
class WriterSchema:
    schema_id: int
    document: dict[str, Any]
    parsed: Any


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message of the delivery topic, decoded. ``value`` None: a tombstone (or a batch's end marker)."""

    data_class: str
    provider: str
    record_id: str | None
    grant_id: str | None
    published_ns: int | None
    key: str | None
    value: dict[str, Any] | None
    schema: WriterSchema | None
    position: Position
    batch: BatchInfo | None
    # The key field the system's grant leaves out or masks (``sharebus-key-withheld``): the bus sent no
    # record key, and the value holds no usable one.
    key_withheld: str | None = None


class DeliveryReader:
    def __init__(
        self,
        settings: BusSettings,
        system: str,
        start: Mapping[tuple[str, int], int],
        on_lost: LostToRetention | None = None,
    ) -> None:
        self.identity = ClientIdentity(settings, f"system {system}")
        self.topic = TopicNames(settings.namespace).delivery(system)
        self._registry = registry_client(settings.registry_url, settings.registry_auth)
        self._schemas: dict[int, WriterSchema] = {}
        group = f"{Principals(settings.namespace).consumer_group_prefix(system)}land"
        self._consumer = self.identity.access.consumer(
            self.identity.client_config(
                {
                    "group.id": group,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    # A stored offset that retention removed is out of range: librdkafka's default
                    # ("largest") would then jump to the end, skipping every retained record not yet
                    # landed, and the next transaction would store offsets past them. From the first
                    # retained one instead; what was lost before it is said (_check_retention).
                    "auto.offset.reset": "earliest",
                }
            )
        )
        metadata = self._consumer.list_topics(self.topic, timeout=30)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise LandError(f"system {system}: cannot see its delivery topic {self.topic}: {topic and topic.error}")
        self.partitions = sorted(topic.partitions)
        # Where each partition is read from: the database's next offset, else the first one retained.
        self._start = {p: start.get((self.topic, p), OFFSET_BEGINNING) for p in self.partitions}
        # The offset each partition should give next, where known: a message past it is a gap to explain.
        self._next = {p: offset for p, offset in self._start.items() if offset >= 0}
        self._on_lost = on_lost
        self._checked = False
        self._consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in self._start.items()])

    def _check_retention(self) -> None:
        """Before the first read: a stored offset below its partition's first retained one is said and
        counted, and reading starts at that first one (which ``positions`` then reports, so ``--once``
        ends on a partition retention emptied).

        A partition whose watermarks the broker does not give now is left to ``_gap``: the reset to the
        earliest offset shows there as a jump past the stored one.
        """
        self._checked = True
        moved = False
        for partition, stored in self._next.items():
            try:
                low, _high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
            except KafkaException as exc:
                log.warning("%s [%d]: first retained offset not known now (%s)", self.topic, partition, exc)
                continue
            if low > stored:
                self._lost(partition, stored, low)
                self._start[partition] = self._next[partition] = low
                moved = True
        if moved:
            self._consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in self._start.items()])

    def _gap(self, partition: int, expected: int, offset: int) -> None:
        """A message past the offset expected: retention removed what lies between (librdkafka's reset to
        the earliest offset) unless the partition still starts at or before it (offsets a producer's
        transaction markers took)."""
        try:
            low, _high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
        except KafkaException:
            low = offset  # not known now: what was skipped is lost all the same
        if low > expected:
            self._lost(partition, expected, min(low, offset))

    def _lost(self, partition: int, first: int, end: int) -> None:
        log.error(
            "%s [%d]: offsets %d to %d (%d record(s)) were removed by the topic's retention before they were "
            "landed; landing goes on from offset %d. Ask for a backfill of what they held.",
            self.topic,
            partition,
            first,
            end - 1,
            end - first,
            end,
        )
        if self._on_lost is not None:
            self._on_lost(partition, first, end - first)

    def poll(self, timeout_s: float) -> Incoming | None:
        if not self._checked:
            self._check_retention()
        msg = self._consumer.poll(timeout_s)
        self.identity.raise_if_refused()
        if msg is None:
            return None
        error = msg.error()
        if error is not None:
            raise self.identity.translate(error, f"read {self.topic}") or KafkaException(error)
        incoming = self._incoming(msg)
        _topic, partition, offset = incoming.position
        expected = self._next.get(partition)
        if expected is not None and offset > expected:
            self._gap(partition, expected, offset)
        self._next[partition] = offset + 1
        return incoming

    def _incoming(self, msg: Message) -> Incoming:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        assert topic is not None
        assert partition is not None
        assert offset is not None
        meta = h.header_map(msg.headers())
        raw, key = msg.value(), msg.key()
        value, schema = None, None
        if raw is not None:
            schema_id, body = unframe(raw)
            schema = self._schema(schema_id)
            value = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
        published = h.text(meta, h.PUBLISHED_NS)
        return Incoming(
            data_class=h.text(meta, h.DATA_CLASS) or "",
            provider=h.text(meta, h.PROVIDER) or "",
            record_id=h.text(meta, h.RECORD_ID),
            grant_id=h.text(meta, h.GRANT_ID),
            published_ns=int(published) if published else None,
            key=key.decode("utf-8", "replace") if key is not None else None,
            value=value if isinstance(value, dict) else None,
            schema=schema,
            position=(topic, partition, offset),
            batch=BatchInfo.from_headers(meta),
            key_withheld=h.text(meta, h.KEY_WITHHELD),
        )

    def _schema(self, schema_id: int) -> WriterSchema:
        found = self._schemas.get(schema_id)
        if found is None:
            document = json.loads(self._registry.get_schema(schema_id).schema_str or "{}")
            found = self._schemas[schema_id] = WriterSchema(schema_id, document, fastavro.parse_schema(document))
        return found

    def lag(self) -> dict[int, int]:
        """Records not yet read, per partition (high watermark minus position)."""
        positions = self.positions()
        lag = {}
        for partition in self.partitions:
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), cached=True)
            position = positions.get(partition, -1)
            lag[partition] = max(0, high - position) if position >= 0 and high >= 0 else 0
        return lag

    def high_watermarks(self) -> dict[int, int]:
        return {
            p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
            for p in self.partitions
        }

    def positions(self) -> dict[int, int]:
        """The next offset to read, per partition.

        librdkafka's position is the offset after the last message consumed, and -1001 (invalid) before
        the first: a partition with nothing new since the database's offset, or emptied by retention, would
        never look read (``--once`` would never end, and its lag would show 0). There it is where reading
        started: the database's offset, else the partition's first retained one.
        """
        if not self._checked:
            self._check_retention()
        found = {tp.partition: tp.offset for tp in self._consumer.position(self._assigned())}
        for partition in self.partitions:
            if found.get(partition, -1) < 0:
                start = self._start.get(partition, OFFSET_BEGINNING)
                found[partition] = start if start >= 0 else self._first_retained(partition)
        return found

    def _first_retained(self, partition: int) -> int:
        """-1 when the broker does not say now: not read yet, asked again next time."""
        try:
            low, _high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
        except KafkaException:
            return -1
        return int(low)

    def _assigned(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in self.partitions]

    def close(self) -> None:
        self._consumer.close()
