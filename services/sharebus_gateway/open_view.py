"""The followed view behind /open/v1: the public delivery topic, read by one thread, kept per class.

The router delivers open classes to the public topic already without their sensitive fields
(``sharebus_rules.routing.public_delivery``); this view applies the same rule again on every record
(``sharebus_rules.open_data``), so a field the public may not see can never be served from here,
whatever was written to the topic. Requests read the view, never the topic: each open class keeps its
newest ``keep`` records, and live feeds are handed new ones through bounded queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue
from sharebus_core.registry_client import registry_client
from sharebus_core.topics import PUBLIC_CONSUMER, TopicNames
from sharebus_gateway.json_avro import to_json
from sharebus_gateway.keys import IssuedKey, KeyStore
from sharebus_gateway.limits import OpenFeeds, TokenBuckets
from sharebus_gateway.metrics import GatewayMetrics
from sharebus_gateway.settings import GatewaySettings
from sharebus_rules.open_data import is_open, key_is_open, open_fields, open_record

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Listener:
    """One live feed of one class: new records arrive on ``queue``; ``overflowed`` when it fell behind."""

    data_class: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, item: dict[str, Any]) -> None:
        """On the listener's loop: queue the record, or mark the feed as fallen behind (it is then ended)."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed.set()


class OpenRecords:
    """Per open class, its newest records as the public may see them; and the live listeners."""

    def __init__(self, settings: GatewaySettings, catalogue: Catalogue, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.keep = settings.open_recent_records
        # Only the fields the rule allows, per open class; every other class is never kept.
        self.fields = {
            code: open_fields(entry, catalogue.schema(code).field_names)
            for code, entry in catalogue.data_classes.items()
            if is_open(entry)
        }
        # The record key is record[key_field]: served only when that field is itself open.
        self._key_open = {code: key_is_open(catalogue.data_classes[code], f) for code, f in self.fields.items()}
        self._recent: dict[str, deque[dict[str, Any]]] = {code: deque(maxlen=self.keep) for code in self.fields}
        self._sequence = dict.fromkeys(self.fields, 0)
        self._listeners: dict[str, set[Listener]] = {code: set() for code in self.fields}
        # partition -> the next offset to take: a follower started again resumes there, keeping nothing twice.
        self._positions: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.caught_up = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="open-data-view", daemon=True)

    # -- reading (request handlers) --------------------------------------------------------------

    def serves_key(self, data_class: str) -> bool:
        return self._key_open.get(data_class, False)

    def page(self, data_class: str, before: int | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` records of the class, newest first, each with a sequence number below ``before``."""
        with self._lock:
            kept = list(self._recent.get(data_class, ()))
        newest_first = [r for r in reversed(kept) if before is None or r["seq"] < before]
        return newest_first[:limit]

    def listen(self, data_class: str, queue_size: int) -> Listener:
        listener = Listener(data_class, asyncio.get_running_loop(), asyncio.Queue(maxsize=queue_size))
        with self._lock:
            self._listeners[data_class].add(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.get(listener.data_class, set()).discard(listener)

    # -- following (its own thread) --------------------------------------------------------------

    def add(self, data_class: str, value: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any] | None:
        """Keeps one delivered record (projected by the open-data rule again) and hands it to the listeners."""
        fields = self.fields.get(data_class)
        if fields is None:
            return None
        with self._lock:
            self._sequence[data_class] += 1
            item = {**meta, "seq": self._sequence[data_class], "value": to_json(open_record(value, fields))}
            self._recent[data_class].append(item)
            listeners = list(self._listeners[data_class])
        for listener in listeners:
            with contextlib.suppress(RuntimeError):  # its loop is gone: the feed is closing
                listener.loop.call_soon_threadsafe(listener.offer, item)
        return item

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception:
                log.exception("open-data view of %s failed; following again in %.0f s", self.topic, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _follow(self) -> None:
        access = self.settings.kafka
        consumer = access.consumer(
            {
                "group.id": access.private_group("open-data"),
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "queued.max.messages.kbytes": 4096,
            }
        )
        deserialize = AvroDeserializer(registry_client(self.settings.registry_url, self.settings.registry_auth))
        try:
            metadata = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                # The router creates it; until then there is nothing to serve, and nothing is wrong.
                self.caught_up.set()
                self._stop.wait(5.0)
                return
            remaining = set()
            assignment = []
            for partition in metadata.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
                start = max(low, self._positions.get(partition, high - self.keep))
                assignment.append(TopicPartition(self.topic, partition, start))
                if high > start:
                    remaining.add(partition)
            consumer.assign(assignment)
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
                        log.warning("open-data view: %s", error.str())
                    continue
                self._take(msg, deserialize)
                self._positions[msg.partition() or 0] = (msg.offset() or 0) + 1
        finally:
            consumer.close()

    def _take(self, msg: Message, deserialize: AvroDeserializer) -> None:
        meta = h.header_map(msg.headers())
        data_class = h.text(meta, h.DATA_CLASS)
        if data_class is None or msg.value() is None or h.text(meta, h.CONSUMER) != PUBLIC_CONSUMER:
            return
        try:
            value = deserialize(msg.value(), SerializationContext(self.topic, MessageField.VALUE))
        except Exception:
            # Skipped, not retried: one record that cannot be decoded must not stop the public view.
            log.exception("open-data view: cannot decode %s[%s]@%s", self.topic, msg.partition(), msg.offset())
            return
        if not isinstance(value, dict):
            return
        key = msg.key() if self.serves_key(data_class) else None
        _kind, stamp = msg.timestamp()
        self.add(
            data_class,
            value,
            {
                "record_id": h.text(meta, h.RECORD_ID),
                "key": key.decode("utf-8", "replace") if key is not None else None,
                "delivered_at": dt.datetime.fromtimestamp(stamp / 1000, dt.UTC).isoformat() if stamp > 0 else None,
            },
        )


class OpenData:
    """What /open/v1 needs: the view, its own limits and feed caps, its counters, and key issuance."""

    def __init__(
        self,
        settings: GatewaySettings,
        catalogue: Catalogue,
        topics: TopicNames,
        metrics: GatewayMetrics,
        keys: KeyStore,
    ) -> None:
        self.view = OpenRecords(settings, catalogue, topics.public)
        self.limits = TokenBuckets(settings.open_rate_per_s, settings.open_rate_burst)
        self.key_limits = TokenBuckets(settings.open_key_rate_per_s, settings.open_key_rate_burst)
        self.issuance = TokenBuckets(settings.open_key_issue_per_hour / 3600.0, settings.open_key_issue_burst)
        self.feeds = OpenFeeds(settings.open_feeds_per_client, settings.open_feeds_max)
        self.requests = metrics.open_requests
        self.served = metrics.open_records
        self._keys = keys

    def issue(self, holder: str, purpose: str, contact: str | None) -> IssuedKey:
        return self._keys.issue_open_data(holder, purpose, contact)
