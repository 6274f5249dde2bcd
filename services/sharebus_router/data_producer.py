"""The data path's producers: idempotent, ``acks=all``; every message's delivery report counted for commits."""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, cast

from confluent_kafka import Producer

from sharebus_core.headers import HeaderList
from sharebus_core.kafka import KafkaAccess
from sharebus_router.acknowledgements import AckLedger, fail_rejected

if TYPE_CHECKING:
    from sharebus_router.data_path_config import DataPathConfig

_Headers = list[tuple[str, str | bytes | None]]  # confluent-kafka's type for what it takes and gives


class DataProducer:
    """Sends the data path's messages; a message Kafka rejects ends the process.

    Several librdkafka producers, each topic always sent by the same one (so a partition's messages keep
    their order). One librdkafka producer puts one partition in a ProduceRequest, and an idempotent one
    has one request in flight at a time (confluentinc/librdkafka#1700, #4989): over the city's ~900
    delivery topics a partition waited its turn for seconds, and the data path's flush before each commit
    took 2.5-10 s (``make bench-scale``). ``producers`` connections take turns in parallel.

    Every message is counted in the open epoch of ``acks``, which its delivery report completes
    (``acknowledgements.py``): the data path commits what is acknowledged without stopping to flush.
    """

    def __init__(self, access: KafkaAccess, config: DataPathConfig) -> None:
        settings = {
            "linger.ms": config.linger_ms,
            "message.max.bytes": config.max_message_bytes,
            # Retries neither repeat nor reorder a partition's messages.
            "enable.idempotence": True,
            # Kafka's own partitioner (Java's and Faust's), not librdkafka's CRC32: a held record must
            # land in the partition where Faust's markers of its class go (held_points.held_partition).
            "partitioner": "murmur2_random",
            # Only for a message sent without its epoch's callback (none is): it fails closed all the same.
            "on_delivery": fail_rejected,
        }
        self._producers: list[Producer] = [access.producer(settings) for _ in range(max(1, config.producers))]
        self._by_topic: dict[str, Producer] = {}
        self.acks = AckLedger()

    def _of(self, topic: str) -> Producer:
        producer = self._by_topic.get(topic)
        if producer is None:
            # crc32, not hash(): the same spread in every run.
            producer = self._by_topic[topic] = self._producers[zlib.crc32(topic.encode()) % len(self._producers)]
        return producer

    async def send(self, topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        self.produce(topic, key, value, headers)

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        producer = self._of(topic)
        epoch = self.acks.open
        while True:
            try:
                producer.produce(topic, value, key, headers=cast(_Headers, headers), on_delivery=epoch)
            except BufferError:
                # The local queue is full: the broker is behind. Waiting here is the back-pressure.
                producer.poll(0.05)
            else:
                epoch.produced += 1
                return

    def poll(self) -> None:
        """Serves the delivery reports that have arrived, on this thread."""
        for producer in self._producers:
            producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Messages still not acknowledged after ``timeout_s`` (0: every one is in Kafka).

        One deadline for all: while the first flush waits, the others' messages are being sent too.
        """
        deadline = time.monotonic() + timeout_s
        return sum(int(p.flush(max(0.0, deadline - time.monotonic()))) for p in self._producers)
