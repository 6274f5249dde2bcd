"""The bench rig shared by the benchmarks: a bus to forward on, the forwarders, and one measured run.

A rig is one broker (started here, or the one ``SHAREBUS_BOOTSTRAP`` names), a schema registry, the
bench topics and the encoded records. A forwarder is a child process that copies records from a
source topic to a sink topic; ``measure`` drains a preloaded backlog through it, then times
publish->deliver at a steady rate and flat out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench.measure import (
    BENCH_CLASS,
    LatencySink,
    high_watermarks,
    output_rate,
    percentile,
    produce,
    publish,
    wait_for_count,
)
from bench.workers import RouterWorkers, one_class_catalogue
from sharebus_access.credentials import provision_access
from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.key_files import bus_keys
from sharebus_core.principals import Service
from sharebus_core.registry_client import auth_of, registry_client
from sharebus_core.scrape_auth import TOKEN_FILE_ENV, ensure_scrape_token
from sharebus_core.topics import TopicNames
from sharebus_demo.fake import RecordFaker
from sharebus_provision import TopicSpec, ensure_topics, register_catalogue_schemas
from sharebus_provision.topics import audit_topics

BENCH_DIR = Path(__file__).resolve().parent
CLASS = BENCH_CLASS
# The same records (the same schema, copied) in a class without a sensitive field: the router passes them whole.
WHOLE_CLASS = "301001001/000002"
CONSUMER = "tax-levy"
SOURCE_PARTITIONS = 3
PYTHON_ENV = {"PYTHONUNBUFFERED": "1"}


def scrape_env(work: Path) -> dict[str, str]:
    """The bus's scrape token for the benchmark's services, whose /metrics demand it (docs/security.md):
    made under ``work`` and named in this process's environment too, so that the children it starts
    inherit it and its own scrapes (``scrape_headers()``) send it."""
    path = str(ensure_scrape_token(work / "scrape-token"))
    os.environ[TOKEN_FILE_ENV] = path
    return {TOKEN_FILE_ENV: path}


@dataclass
class Result:
    name: str
    records: int
    throughput_rps: float
    steady_p50_ms: float
    steady_p99_ms: float
    flat_p50_ms: float
    flat_p99_ms: float


MEASURES = ("throughput_rps", "steady_p50_ms", "steady_p99_ms", "flat_p50_ms", "flat_p99_ms")


@dataclass(frozen=True)
class Forwarder:
    child: Child
    source: str
    sink: str
    # The class its records are labelled with.
    data_class: str = CLASS


@dataclass(frozen=True)
class Rig:
    """A bus ready to forward on: who measures (``access``), what children get (``env``), the records.

    ``env`` gives a child the admin's identity (the raw and bare Faust forwarders, whose topics no
    ACL names); ``router_env`` gives the router its own principal on a secured broker, as ``sharebus
    run`` does, so that the router pays for its ACL checks like in production.
    """

    work: Path
    topics: TopicNames
    access: KafkaAccess
    env: dict[str, str]
    router_env: dict[str, str]
    payloads: list[tuple[bytes, bytes]]
    # The auditor's principal and its anchor-signing key: the sharebus rounds run the auditor too.
    auditor_env: dict[str, str]

    @property
    def record_bytes(self) -> float:
        return sum(len(v) for _, v in self.payloads) / len(self.payloads)


def add_load_arguments(parser: argparse.ArgumentParser, records: int, rounds: int, steady_rate: float = 1000.0) -> None:
    """The workload options every benchmark shares (``measure`` reads them)."""
    parser.add_argument("--records", type=int, default=records)
    parser.add_argument("--steady-rate", type=float, default=steady_rate, help="records/s of the steady phase")
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    parser.add_argument("--flat-records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds; the median run is reported")


def start_broker(stack: ExitStack, settings: BrokerSettings) -> KafkaAccess:
    """Starts a broker that ``stack`` stops; returns its super user's access (the bench provisions)."""
    broker = KafkaBroker(settings).start()
    stack.callback(broker.stop)
    return broker.admin_access


def open_rig(stack: ExitStack, work: Path, access: KafkaAccess, records: int) -> Rig:
    """Registry, topics, schemas and ``records`` encoded records on the broker ``access`` reaches."""
    topics = TopicNames(f"bench-{uuid.uuid4().hex[:8]}")
    ns = topics.namespace
    catalogue = load_catalogue(BENCH_DIR / "catalogue")
    registry_port = free_port()
    registry_url = f"http://127.0.0.1:{registry_port}"
    keys = bus_keys(work / "keys")
    env = {
        **access.env(),
        "SHAREBUS_NAMESPACE": ns,
        "SHAREBUS_REGISTRY_URL": registry_url,
        "SHAREBUS_REGISTRY_PORT": str(registry_port),
        # The router reads grants only once verified: it needs the control plane's public key.
        **keys.everyone,
        **scrape_env(work),
        **PYTHON_ENV,
    }
    services = service_envs(access, catalogue, ns)
    registry_env = {**env, **services.get("registry", {})}
    registry = start_child("registry", "sharebus_registry", registry_env, work / "registry.log", f"{registry_url}/", 60)
    stack.callback(registry.stop)
    specs = [
        TopicSpec(topics.source(CLASS), SOURCE_PARTITIONS),
        TopicSpec(topics.source(WHOLE_CLASS), SOURCE_PARTITIONS),
        TopicSpec(topics.delivery(CONSUMER), 3),
        TopicSpec(topics.delivery("amr-reg"), 3),
        TopicSpec(topics.dead_letter, 3),
    ]
    specs += [TopicSpec(f"{ns}.{name}.{end}", 3) for name in ("raw", "faust") for end in ("in", "out")]
    specs += audit_topics(topics)  # the auditor may start before the router, which would make them
    ensure_topics(access, specs)
    register_catalogue_schemas(catalogue, topics, registry_url, auth_of(access))
    print(f"bench: encoding {records} records", flush=True)
    payloads = encode_records(
        registry_url, auth_of(access), topics.source(CLASS), catalogue.schema(CLASS).text, records
    )
    auditor_env = {**env, **services.get("auditor", {}), **keys.auditor}
    return Rig(work, topics, access, env, {**env, **services.get("router", {})}, payloads, auditor_env)


def service_envs(access: KafkaAccess, catalogue: Catalogue, ns: str) -> dict[Service, dict[str, str]]:
    """The registry's, the router's and the auditor's own principals, with the namespace's ACLs; none on plaintext."""
    if not access.secured:
        # No authorizer and no authentication there: every client is ANONYMOUS.
        return {}
    accesses = provision_access(access, catalogue, ns, services=("registry", "router", "auditor"))
    return {service: service_access.env() for service, service_access in accesses.items()}


def encode_records(
    registry_url: str, registry_auth: str | None, subject_topic: str, schema_text: str, n: int
) -> list[tuple[bytes, bytes]]:
    faker = RecordFaker(seed=42)
    catalogue = load_catalogue(BENCH_DIR / "catalogue")
    schema = catalogue.schema(CLASS)
    serializer = AvroSerializer(
        registry_client(registry_url, registry_auth), schema_text, conf={"auto.register.schemas": False}
    )
    ctx = SerializationContext(subject_topic, MessageField.VALUE)
    payloads = []
    for _ in range(n):
        record = faker.record(schema)
        payloads.append((record["uscc"].encode(), serializer(record, ctx)))
    return payloads


def forwarder(
    name: str,
    module: str,
    env: dict[str, str],
    work: Path,
    source: str,
    sink: str,
    extra: dict[str, str],
    data_class: str = CLASS,
) -> Forwarder:
    child_env = {**env, "BENCH_SOURCE": source, "BENCH_SINK": sink, **extra}
    return Forwarder(Child(name, module, child_env, work / f"{name}.log"), source, sink, data_class)


def raw_forwarder(rig: Rig, name: str = "raw") -> Forwarder:
    """confluent-kafka consume -> produce: the broker's and client's ceiling."""
    ns = rig.topics.namespace
    return forwarder(
        name,
        "bench.raw_passthrough",
        rig.env,
        rig.work,
        f"{ns}.raw.in",
        f"{ns}.raw.out",
        {"BENCH_APP_ID": f"{ns}-{name}"},
    )


def faust_forwarder(rig: Rig) -> Forwarder:
    """A bare Faust agent with the router's app settings and send path: Faust's ceiling."""
    ns = rig.topics.namespace
    return forwarder(
        "faust",
        "bench.bare_faust",
        rig.env,
        rig.work,
        f"{ns}.faust.in",
        f"{ns}.faust.out",
        {
            "BENCH_APP_ID": f"{ns}-bare",
            "SHAREBUS_ROUTER_DATA_DIR": str(rig.work / "faust"),
            "SHAREBUS_ROUTER_WEB_PORT": str(free_port()),
        },
    )


def router_forwarder(
    name: str,
    env: dict[str, str],
    work: Path,
    topics: TopicNames,
    extra: dict[str, str],
    data_class: str = CLASS,
    workers: int = 1,
) -> Forwarder:
    """The real router, from a bench class's source topic to the bench consumer's delivery topic;
    ``workers`` router processes in one group (``bench.workers``)."""
    fwd = forwarder(
        name,
        "sharebus_router",
        env,
        work,
        topics.source(data_class),
        topics.delivery(CONSUMER),
        {
            "SHAREBUS_CATALOGUE_DIR": str(BENCH_DIR / "catalogue"),
            "SHAREBUS_ROUTER_LOG_LEVEL": "warning",
            "SHAREBUS_ROUTER_DATA_DIR": str(work / name),
            "SHAREBUS_ROUTER_WEB_PORT": str(free_port()),
            **extra,
        },
        data_class,
    )
    if workers == 1:
        return fwd
    env = {
        **fwd.child.env,
        "SHAREBUS_CATALOGUE_DIR": str(one_class_catalogue(BENCH_DIR / "catalogue", data_class, work)),
    }
    group = RouterWorkers(name, env, work, workers, topics.router_app_id)
    return Forwarder(group, fwd.source, fwd.sink, data_class)


def preload(access: KafkaAccess, topic: str, payloads: list[tuple[bytes, bytes]], data_class: str = CLASS) -> None:
    producer = access.producer({"linger.ms": 20, "acks": "all"})
    for i, (key, value) in enumerate(payloads):
        headers: list[tuple[str, str | bytes | None]] = [
            ("sharebus-class", data_class.encode()),
            ("sharebus-provider", b"AMR"),
            ("sharebus-record-id", f"pre-{i}".encode()),
            ("sharebus-published-ns", b"0"),
        ]
        produce(producer, topic, key, value, headers)
    producer.flush(120)


class Probe:
    """Watches something beside the forwarder: told when the backlog is drained and when the run ends."""

    def drained(self) -> None:
        pass

    def steady_started(self) -> None:
        pass

    def steady_ended(self) -> None:
        pass


def run_round(
    name: str, fwd: Forwarder, rig: Rig, args: argparse.Namespace, label: str, probe: Probe | None = None
) -> Result:
    """Preloads the backlog and measures ``fwd`` on it; ``label`` says which round in the progress lines."""
    sink_start = None
    if isinstance(fwd.child, RouterWorkers):
        # Running already, the workers route the backlog as it is written: count their output from here.
        fwd.child.start().settle(rig.access, fwd.source, SOURCE_PARTITIONS)
        sink_start = high_watermarks(rig.access, fwd.sink)
    print(f"bench: {label}: preloading {len(rig.payloads)} records into {fwd.source}", flush=True)
    preload(rig.access, fwd.source, rig.payloads, fwd.data_class)
    print(f"bench: {label}: measuring {name}", flush=True)
    result = measure(name, fwd, rig.access, rig.payloads, args, probe, sink_start)
    print(f"bench: {result}", flush=True)
    return result


def measure(
    name: str,
    fwd: Forwarder,
    access: KafkaAccess,
    payloads: list[tuple[bytes, bytes]],
    args: argparse.Namespace,
    probe: Probe | None = None,
    sink_start: list[TopicPartition] | None = None,
) -> Result:
    probe = probe or Probe()
    n, child, source, sink = len(payloads), fwd.child, fwd.source, fwd.sink
    # Earlier rounds left records in the sink; this round's output starts at the current ends.
    start = sink_start if sink_start is not None else high_watermarks(access, sink)
    before = sum(tp.offset for tp in start)
    child.start()
    try:
        got = wait_for_count(access, sink, before + n, timeout_s=600, alive=child.alive) - before
        if got < n or not child.alive():
            raise SystemExit(f"{name}: only {got}/{n} records came out. Log {child.log_path}:\n{child.tail()}")
        rate = output_rate(access, start, n)
        probe.drained()
        latencies = {}
        for phase, total, pace in (
            ("steady", int(args.steady_rate * args.steady_seconds), args.steady_rate),
            ("flat", args.flat_records, None),
        ):
            sink_reader = LatencySink(access, sink, f"{name}-{phase}").start()
            if phase == "steady":
                probe.steady_started()
            publish(access, source, payloads, total, f"{name}-{phase}", pace, fwd.data_class)
            sink_reader.wait(total, timeout_s=300)
            if phase == "steady":
                probe.steady_ended()
                print(f"bench: {name} steady p50/p99 by stage: {sink_reader.stages()}", flush=True)
            latencies[phase] = sink_reader.latencies_ms
            if len(sink_reader.latencies_ms) < total:
                raise SystemExit(f"{name}/{phase}: {len(sink_reader.latencies_ms)}/{total} records measured")
    finally:
        child.stop()
    return Result(
        name,
        n,
        rate,
        percentile(latencies["steady"], 0.5),
        percentile(latencies["steady"], 0.99),
        percentile(latencies["flat"], 0.5),
        percentile(latencies["flat"], 0.99),
    )


def median_run(runs: list[Result]) -> Result:
    """The run with the median throughput (its latencies come with it)."""
    return sorted(runs, key=lambda r: r.throughput_rps)[len(runs) // 2]


def median_each(runs: list[Result]) -> Result:
    """Each figure's median over the runs on its own: a run's slow spell moves one figure, not all."""
    return Result(
        runs[0].name,
        runs[0].records,
        *(statistics.median(getattr(r, f) for r in runs) for f in MEASURES),
    )


def print_table(rows: list[tuple[str, Result]], head: str) -> None:
    """One line per labelled result: records/s, then steady and flat-out p50/p99."""
    width = max(len(head), *(len(label) for label, _ in rows))
    print(f"{head:<{width}} {'records/s':>10} {'steady p50':>11} {'steady p99':>11} {'flat p50':>10} {'flat p99':>10}")
    for label, r in rows:
        print(
            f"{label:<{width}} {r.throughput_rps:>10.0f} {r.steady_p50_ms:>9.1f}ms {r.steady_p99_ms:>9.1f}ms "
            f"{r.flat_p50_ms:>8.0f}ms {r.flat_p99_ms:>8.0f}ms"
        )


def warn_if_saturated(rows: list[tuple[str, Result]], steady_rate: float) -> None:
    """Steady latency means the path's latency only while the forwarder keeps up with ease."""
    for label, r in rows:
        if r.throughput_rps < 2 * steady_rate:
            print(
                f"note: {label} drains {r.throughput_rps:.0f} records/s, under twice the steady rate "
                f"({steady_rate:.0f}/s): its steady latencies include queueing"
            )


def ratio_line(name: str, result: Result, base: Result) -> tuple[float, float]:
    """Prints and returns the throughput and steady-p99 ratios of ``result`` to ``base``."""
    throughput = result.throughput_rps / base.throughput_rps
    p99 = result.steady_p99_ms / base.steady_p99_ms
    print(f"throughput {name}: {throughput:.2f}   steady p99 {name}: {p99:.2f}")
    return throughput, p99


def write_results(stem: str, data: dict[str, Any]) -> Path:
    out = BENCH_DIR / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2))
    print(f"written to {path}")
    return path
