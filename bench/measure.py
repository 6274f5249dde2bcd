"""Measuring tools for the benchmark: output throughput from timestamps, and publish->deliver latency."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from sharebus_core import headers as h
from sharebus_core.kafka import KafkaAccess

PHASE = "bench-phase"
# The benchmark catalogue's class with a sensitive field (bench/catalogue): what the publishers label by default.
BENCH_CLASS = "301001001/000001"


def high_watermarks(access: KafkaAccess, topic: str, probe: Consumer | None = None) -> list[TopicPartition]:
    """The topic's end offsets, asked with ``probe`` (kept open by callers that ask often) or a new consumer."""
    consumer = probe or access.consumer({"group.id": "bench-probe"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in sorted(partitions)
        ]
    finally:
        if probe is None:
            consumer.close()


def wait_for_count(
    access: KafkaAccess, topic: str, expected: int, timeout_s: float, alive: Callable[[], bool] = lambda: True
) -> int:
    """Waits until ``topic`` holds ``expected`` records; returns how many it holds.

    One probe consumer for the whole wait: a new one every poll would cost a TLS handshake and a
    SCRAM exchange each time on the secured broker, CPU the forwarder being measured needs.
    """
    probe = access.consumer({"group.id": "bench-probe"})
    try:
        deadline = time.monotonic() + timeout_s
        seen = sum(tp.offset for tp in high_watermarks(access, topic, probe))
        while seen < expected and time.monotonic() < deadline and alive():
            time.sleep(0.5)
            seen = sum(tp.offset for tp in high_watermarks(access, topic, probe))
        return seen
    finally:
        probe.close()


def output_rate(access: KafkaAccess, start: list[TopicPartition], expected: int) -> float:
    """Records/s from the producer timestamps of the ``expected`` output records after ``start``."""
    consumer = access.consumer({"group.id": f"bench-rate-{time.time_ns()}", "enable.auto.commit": False})
    consumer.assign(start)
    stamps: list[int] = []
    deadline = time.monotonic() + 120
    while len(stamps) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(5000, 0.5):
            if msg.error() is None:
                stamps.append(msg.timestamp()[1])
    consumer.close()
    span_s = (max(stamps) - min(stamps)) / 1000.0
    return len(stamps) / span_s if span_s > 0 else float("inf")


def of_phase(msg: Message, phase: bytes) -> tuple[float, float] | None:
    """A delivered record of ``phase``, measured as it is received: (publish->received, publish->forwarded)
    in ms, the forwarded time being the delivery's CreateTime (when the forwarder produced it)."""
    received = time.time_ns()
    meta = h.header_map(msg.headers())
    if msg.error() is not None or meta.get(PHASE) != phase:
        return None
    published_ns = int(meta[h.PUBLISHED_NS])
    return (received - published_ns) / 1e6, msg.timestamp()[1] - published_ns / 1e6


@dataclass
class LatencySink:
    """Receives one phase's records from an output topic and keeps publish->deliver latencies."""

    access: KafkaAccess
    topic: str
    phase: str
    latencies_ms: list[float] = field(default_factory=list)
    # The output record's CreateTime is when the forwarder produced it: publish->forwarded, then the rest.
    forwarded_ms: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def stages(self) -> str:
        """p50/p99 of publish->forwarded and forwarded->received (the forwarder's send, the broker, the sink)."""
        split = by_stage(self.latencies_ms, self.forwarded_ms)
        return (
            f"publish->forwarded {split['first_p50']:.1f}/{split['first_p99']:.1f} ms, "
            f"forwarded->received {split['rest_p50']:.1f}/{split['rest_p99']:.1f} ms"
        )

    def start(self) -> LatencySink:
        consumer = self.access.consumer(
            {
                "group.id": f"bench-sink-{time.time_ns()}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        # Assigned at the current ends, so nothing of earlier phases is counted.
        consumer.assign(high_watermarks(self.access, self.topic))
        # Connect and open the fetch session before the phase starts, or its first records would
        # carry the sink's start-up time as latency.
        consumer.poll(1.0)
        phase = self.phase.encode()

        def run() -> None:
            while not self._stop.is_set():
                first = consumer.poll(0.05)
                if first is None:
                    continue
                for msg in [first, *consumer.consume(999, 0)]:
                    if (measured := of_phase(msg, phase)) is not None:
                        self.latencies_ms.append(measured[0])
                        self.forwarded_ms.append(measured[1])
            consumer.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def wait(self, expected: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.latencies_ms) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def publish(
    access: KafkaAccess,
    topic: str,
    payloads: Sequence[tuple[bytes, bytes]],
    total: int,
    phase: str,
    rate: float | None,
    data_class: str = BENCH_CLASS,
) -> None:
    """Sends ``total`` records (cycling the payloads), paced at ``rate``/s or flat out when None."""
    producer = access.producer({"acks": "all", "linger.ms": 5, "enable.idempotence": True})
    # The idempotent producer fetches its producer id first; do that before the clock starts.
    producer.list_topics(topic, timeout=10)
    producer.poll(0.5)
    interval = 1.0 / rate if rate else 0.0
    next_at = time.monotonic()
    for i in range(total):
        key, value = payloads[i % len(payloads)]
        headers: list[tuple[str, str | bytes | None]] = [
            (h.DATA_CLASS, data_class.encode()),
            (h.PROVIDER, b"AMR"),
            (h.RECORD_ID, f"{phase}-{i}".encode()),
            (PHASE, phase.encode()),
            (h.PUBLISHED_NS, str(time.time_ns()).encode()),
        ]
        produce(producer, topic, key, value, headers)
        producer.poll(0)
        if interval:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    producer.flush(60)


def produce(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    headers: list[tuple[str, str | bytes | None]],
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
) -> None:
    """Produces, waiting for room when the local queue is full (flat-out phases fill it)."""
    while True:
        try:
            if on_delivery is None:
                producer.produce(topic, value=value, key=key, headers=headers)
            else:
                producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
        else:
            return


def by_stage(totals_ms: list[float], first_ms: list[float]) -> dict[str, float]:
    """p50/p99 of a delivery's two stages, split at the output record's CreateTime: ``first_*`` up to
    it (publish -> the forwarder produced it), ``rest_*`` after it (the broker and the sink)."""
    rest = [whole - first for whole, first in zip(totals_ms, first_ms, strict=True)]
    return {
        "first_p50": percentile(first_ms, 0.5),
        "first_p99": percentile(first_ms, 0.99),
        "rest_p50": percentile(rest, 0.5),
        "rest_p99": percentile(rest, 0.99),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]
