"""The city's traffic for ``bench.scale``: one producer per department, records of every class at a
steady rate, a sink over every delivery topic, and the raw forwarder over the city's own topics."""

from __future__ import annotations

import argparse
import io
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
from confluent_kafka import OFFSET_END, KafkaError, Message, Producer, TopicPartition

from bench.measure import PHASE, by_stage, of_phase, percentile, produce
from bench.rig import PYTHON_ENV
from sharebus_cli.children import Child
from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue, ShareType, UpdateMode
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_core.wire import frame
from sharebus_demo.fake import RecordFaker


def encoded_records(
    catalogue: Catalogue, topics: TopicNames, schema_ids: dict[str, int]
) -> tuple[list[tuple[str, str, bytes, bytes]], dict[str, int]]:
    """One record per class (topic, class, key, value), and how many deliveries each class makes at once."""
    faker = RecordFaker(seed=13)
    records = []
    fanout = {}
    for code, entry in catalogue.data_classes.items():
        schema = catalogue.schema(code)
        record = faker.record(schema)
        body = io.BytesIO()
        fastavro.schemaless_writer(body, schema.parsed, record)
        key = str(record[entry.key_field]).encode()
        records.append((topics.source(code), code, key, frame(schema_ids[code], body.getvalue())))
        at_once = entry.share_type is ShareType.UNCONDITIONAL and entry.mode is UpdateMode.REALTIME
        fanout[code] = len(catalogue.subscriptions_of(code)) if at_once else 0
    return records, fanout


@dataclass
class Steady:
    """The latency phases over the city's topics: a warm-up round (one record per class, until all its
    deliveries arrive), then a steady rate spread over every class, measured at the delivery topics."""

    admin: KafkaAccess
    catalogue: Catalogue
    topics: TopicNames
    records: list[tuple[str, str, bytes, bytes]]
    fanout: dict[str, int]
    producers: Publishers
    args: argparse.Namespace

    @property
    def delivery_topics(self) -> list[str]:
        return [self.topics.delivery(s) for s in self.catalogue.systems]

    def warm_round(self, phase: str, forwarders: list[Child]) -> None:
        warm = MultiTopicSink(self.admin, self.delivery_topics, phase, self.args.sink_wait_ms).start()
        send_phase(self.producers, self.catalogue, self.records, len(self.records), phase, None)
        warm.wait(sum(self.fanout.values()), 600, forwarders)

    def measure(self, phase: str, forwarders: list[Child]) -> dict[str, float]:
        total = int(self.args.steady_rate * self.args.steady_seconds)
        expected = sum(self.fanout[self.records[i % len(self.records)][1]] for i in range(total))
        sink = MultiTopicSink(self.admin, self.delivery_topics, phase, self.args.sink_wait_ms).start()
        print(
            f"bench: {phase}: {total} records at {self.args.steady_rate:.0f}/s over {len(self.records)} classes",
            flush=True,
        )
        acked: list[float] = []
        send_phase(self.producers, self.catalogue, self.records, total, phase, self.args.steady_rate, acked)
        sink.wait(expected, 120, forwarders)
        got = sink.latencies_ms
        print(f"bench: {phase}: {len(got)}/{expected} deliveries measured", flush=True)
        if not got:
            logs = "\n".join(f"{f.log_path}:\n{f.tail()}" for f in forwarders)
            raise SystemExit(f"no deliveries measured in {phase}; {logs}")
        split = by_stage(got, sink.routed_ms)
        return {
            "p50": percentile(got, 0.5),
            "p99": percentile(got, 0.99),
            "deliveries": len(got),
            "expected": expected,
            "publish_to_acked_p50": percentile(acked, 0.5),
            "publish_to_acked_p99": percentile(acked, 0.99),
            "publish_to_routed_p50": split["first_p50"],
            "publish_to_routed_p99": split["first_p99"],
            "routed_to_received_p50": split["rest_p50"],
            "routed_to_received_p99": split["rest_p99"],
        }


def cores_since(cpu_before: dict[str, float], started: float) -> dict[str, float]:
    """Who had the two cores since ``started`` (CPU seconds / wall seconds, by role)."""
    cpu_after, span = cpu_seconds(), time.monotonic() - started
    cores = {role: round((cpu_after[role] - cpu_before.get(role, 0.0)) / span, 2) for role in cpu_after}
    cores["wall seconds"] = round(span, 1)
    return cores


_ROLES = (
    ("kafka.Kafka", "broker"),
    ("sharebus_router", "router"),
    ("sharebus_audit", "auditor"),
    ("sharebus_monitor", "monitor"),
    ("sharebus_registry", "registry"),
    ("bench.raw_fanout", "raw forwarder"),
    ("bench.scale", "benchmark (publisher and sinks)"),
)


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system, all threads) of the run's processes so far, by role."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        role = next((name for marker, name in _ROLES if marker in cmdline), None)
        if role is not None:
            found[role] = found.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


class Publishers:
    """A producer per providing department (idempotent, ``acks=all``), each connected before the phases."""

    def __init__(self, admin: KafkaAccess, catalogue: Catalogue) -> None:
        self.provider = {code: entry.provider for code, entry in catalogue.data_classes.items()}
        self.by_department: dict[str, Producer] = {}
        for department in sorted(set(self.provider.values())):
            config = {"acks": "all", "linger.ms": 5, "enable.idempotence": True, "client.id": f"bench-{department}"}
            self.by_department[department] = admin.producer(config)
        for producer in self.by_department.values():
            producer.list_topics(timeout=10)

    def of(self, code: str) -> Producer:
        return self.by_department[self.provider[code]]

    def poll(self) -> None:
        """Serves every producer's delivery reports (the acknowledged times are taken there)."""
        for producer in self.by_department.values():
            producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        for producer in self.by_department.values():
            producer.flush(timeout_s)


def send_phase(
    producers: Publishers,
    catalogue: Catalogue,
    records: list[tuple[str, str, bytes, bytes]],
    total: int,
    phase: str,
    rate: float | None,
    acked_ms: list[float] | None = None,
) -> None:
    """Sends ``total`` records, cycling over the classes, at ``rate``/s (flat out when None).

    ``acked_ms`` gets each record's publish->acknowledged time: how long the publisher's own send to
    the broker took, before any router could see the record.
    """
    interval, next_at = (1.0 / rate if rate else 0.0), time.monotonic()
    for i in range(total):
        topic, code, key, value = records[i % len(records)]
        published_ns = time.time_ns()
        headers: list[tuple[str, str | bytes | None]] = [
            (h.DATA_CLASS, code.encode()),
            (h.PROVIDER, catalogue.data_class(code).provider.encode()),
            (h.RECORD_ID, f"{phase}-{i}".encode()),
            (PHASE, phase.encode()),
            (h.PUBLISHED_NS, str(published_ns).encode()),
        ]
        on_delivery = None if acked_ms is None else _acknowledged(acked_ms, published_ns)
        produce(producers.of(code), topic, key, value, headers, on_delivery)
        if i % 10 == 0:
            producers.poll()
        if interval:
            next_at += interval
            if (delay := next_at - time.monotonic()) > 0:
                time.sleep(delay)
    producers.flush(60)


def _acknowledged(acked_ms: list[float], published_ns: int) -> Callable[[KafkaError | None, Message], None]:
    def done(error: KafkaError | None, _msg: Message) -> None:
        if error is None:
            acked_ms.append((time.time_ns() - published_ns) / 1e6)

    return done


@dataclass
class MultiTopicSink:
    """Publish->deliver latencies of one phase, over many delivery topics at once."""

    access: KafkaAccess
    topics: list[str]
    phase: str
    wait_ms: int = 10
    latencies_ms: list[float] = field(default_factory=list)
    # The delivered record's CreateTime is when the router produced it: publish->routed, routed->received.
    routed_ms: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MultiTopicSink:
        consumer = self.access.consumer(
            {
                "group.id": f"bench-sink-{time.time_ns()}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": self.wait_ms,
            }
        )
        metadata = consumer.list_topics(timeout=30).topics
        consumer.assign(
            [TopicPartition(t, p, OFFSET_END) for t in self.topics for p in metadata[t].partitions if t in metadata]
        )
        # Let every partition resolve its end before the phase starts.
        warm_until = time.monotonic() + 5
        while time.monotonic() < warm_until:
            consumer.poll(0.2)
        phase = self.phase.encode()

        def run() -> None:
            while not self._stop.is_set():
                for msg in consumer.consume(1000, 0.05):
                    if (measured := of_phase(msg, phase)) is not None:
                        self.latencies_ms.append(measured[0])
                        self.routed_ms.append(measured[1])
            consumer.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def wait(self, expected: int, timeout_s: float, routers: list[Child]) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.latencies_ms) < expected and time.monotonic() < deadline and all(r.alive() for r in routers):
            time.sleep(0.2)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def raw_city_latency(
    admin: KafkaAccess, work: Path, catalogue: Catalogue, topics: TopicNames, steady: Steady
) -> tuple[dict[str, float], dict[str, float]]:
    """A raw confluent-kafka forwarder over the city's own source topics, making the router's deliveries
    (each real-time unconditional record copied to its subscribers' topics) at the same rate: the floor
    this broker and machine give the city's partitions, with no decoding, rules or audit; and the cores
    each process used over its steady phase."""
    routes = {
        topics.source(code): [topics.delivery(s.system) for s in catalogue.subscriptions_of(code)]
        for code in catalogue.data_classes
        if steady.fanout[code]
    }
    routes_file = work / "raw-city-routes.json"
    routes_file.write_text(json.dumps(routes))
    env = {**admin.env(), **PYTHON_ENV, "BENCH_ROUTES": str(routes_file), "BENCH_APP_ID": f"{topics.namespace}-raw"}
    raw = Child("raw-city", "bench.raw_fanout", env, work / "raw-city.log").start()
    try:
        steady.warm_round("raw-warm", [raw])
        cpu_before, started = cpu_seconds(), time.monotonic()
        got = steady.measure("raw-steady", [raw])
        cores = cores_since(cpu_before, started)
    finally:
        raw.stop()
    return got, cores
