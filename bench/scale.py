"""Benchmark: the bus over the city's catalogue (3,170 classes), from one run.

Run with ``make bench-scale`` (or ``python -m bench.scale --scale district`` for a quick look). It
generates the catalogue (``sharebus catalogue generate``), starts a secured broker, the registry, the
router, the auditor and the lag monitor over it, and reports:

- provisioning: ACLs, topics and schemas (first run), and a second, incremental run (nothing to do);
- the router's start to ready (``/readyz`` 200), and its peak RSS;
- the series count and size of every process's ``/metrics``;
- publish->deliver p50/p99 at a steady rate spread over every class, against two raw confluent-kafka
  floors at the same rate in the same run: a forwarder over the city's own topics making the same
  deliveries (``bench.raw_fanout``, the routers stopped), and a passthrough over one topic.

Records go to every class in turn; only real-time unconditional classes deliver at once (periodic
ones are held, conditional ones need a grant), and those deliveries are what the latency counts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.city_traffic import Publishers, Steady, cores_since, cpu_seconds, encoded_records, raw_city_latency
from bench.measure import LatencySink, percentile, publish, wait_for_count
from bench.rig import PYTHON_ENV, forwarder, scrape_env, start_broker, write_results
from sharebus_access.credentials import provision_access
from sharebus_broker import BrokerSettings
from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.exposition import shards_for
from sharebus_core.kafka import KafkaAccess
from sharebus_core.key_files import bus_keys
from sharebus_core.registry_client import auth_of
from sharebus_core.scrape_auth import scrape_headers
from sharebus_core.topics import TopicNames
from sharebus_demo.city_catalogue import generate
from sharebus_provision import (
    BusProvisioning,
    TopicSpec,
    catalogue_topics,
    ensure_topics,
    provision_bus,
    router_topics,
)
from sharebus_router.settings import RouterSettings

ROUTER_READY_TIMEOUT_S = 600.0


@dataclass
class Figures:
    scale: str
    classes: int
    partitions: int
    delivery_partitions: int
    timings_s: dict[str, float] = field(default_factory=dict)
    routers: int = 1
    router_peak_rss_mib: float = 0.0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Cores each process used over the steady phase (CPU seconds / wall seconds).
    steady_cpu: dict[str, float] = field(default_factory=dict)
    # The same over the raw forwarder's steady phase on the city's topics.
    raw_city_cpu: dict[str, float] = field(default_factory=dict)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--scale", default="city", choices=("city", "district", "small"))
    parser.add_argument("--partitions", type=int, default=3, help="partitions per source topic")
    parser.add_argument(
        "--delivery-partitions",
        type=int,
        default=RouterSettings.model_fields["delivery_partitions"].default,
        help="partitions per delivery topic (the router's default unless given)",
    )
    parser.add_argument(
        "--sink-wait-ms",
        type=int,
        default=10,
        help="the latency sink's fetch.wait.max.ms: 10 polls its 2,700 partitions ~100 times a second when idle "
        "(a broker cost of the measurement); 500 is a subscriber's default (docs/benchmarks.md)",
    )
    parser.add_argument(
        "--broker-heap",
        default="3g",
        help="the broker's JVM heap: 12,230 partitions filled 75-83%% of 1g, and a second consumer over every "
        "source partition ran it out of memory (docs/benchmarks.md)",
    )
    parser.add_argument(
        "--raw-first",
        action="store_true",
        help="measure the raw forwarder over the city's topics before the routers start (by default after they stop; "
        "the routers then first route the raw phases' records, which the warm round waits for)",
    )
    parser.add_argument("--steady-rate", type=float, default=2000.0, help="records/s, spread over every class")
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    parser.add_argument("--routers", type=int, default=1, help="router workers sharing the source partitions")
    parser.add_argument("--work", type=Path, help="keep logs and scrapes here (default: a temporary directory)")
    parser.add_argument(
        "--router-log-level", default="warning", help="info logs the router's start step by step (docs/benchmarks.md)"
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the broker and the children are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.work is not None and (args.work / "kafka").exists():
        # A broker started over an earlier run's 12,000 partitions spends minutes loading them, and its
        # old credentials make the new ones look refused: every figure would be wrong.
        parser.error(
            f"--work {args.work} holds an earlier run's broker data ({args.work / 'kafka'}); give an empty directory"
        )
    with tempfile.TemporaryDirectory(prefix="sharebus-bench-scale-") as tmp, ExitStack() as stack:
        work = args.work or Path(tmp)
        figures = run(stack, work, args)
    report(figures)
    write_results("scale", figures.__dict__)
    return 0


def run(stack: ExitStack, work: Path, args: argparse.Namespace) -> Figures:
    started = time.monotonic()
    generate(args.scale, work / "catalogue", partitions=args.partitions)
    catalogue = load_catalogue(work / "catalogue")
    figures = Figures(
        args.scale, len(catalogue.data_classes), args.partitions, args.delivery_partitions, routers=args.routers
    )
    figures.timings_s["generate_and_load"] = time.monotonic() - started
    print(f"bench: {figures.classes} classes, {len(catalogue.subscriptions)} subscriptions", flush=True)
    bus = open_bus(stack, work, catalogue, args, figures)
    records, fanout = encoded_records(catalogue, bus.topics, bus.schema_ids)
    steady = Steady(bus.admin, catalogue, bus.topics, records, fanout, Publishers(bus.admin, catalogue), args)
    if args.raw_first:
        # The floor first, before any router runs, so that neither phase has the other's history.
        bus.start_observers(stack)
        figures.latency_ms["raw_city"], figures.raw_city_cpu = raw_city_latency(
            bus.admin, work, catalogue, bus.topics, steady
        )
    routers = start_routers(stack, work, bus.router_env, bus.router_ports, figures)
    figures.timings_s["provisioning_plus_router_ready"] = (
        figures.timings_s["provisioning"] + figures.timings_s["router_start_to_ready"]
    )
    if not args.raw_first:
        bus.start_observers(stack)
    with timed(figures, "first_round_delivered"):
        steady.warm_round("warm", routers)
    cpu_before, started = cpu_seconds(), time.monotonic()
    figures.latency_ms["sharebus"] = steady.measure("steady", routers)
    figures.steady_cpu = cores_since(cpu_before, started)
    figures.router_peak_rss_mib = max(peak_rss_mib(router) for router in routers)
    scrape_all(figures, bus, routers, work, shards_for(len(catalogue.data_classes)))
    if not args.raw_first:
        # The floor over the same topics: the routers stop, and a raw forwarder makes the same deliveries.
        for router in routers:
            router.stop()
        figures.latency_ms["raw_city"], figures.raw_city_cpu = raw_city_latency(
            bus.admin, work, catalogue, bus.topics, steady
        )
    figures.latency_ms["raw"] = raw_latency(bus.admin, work, bus.topics, args)
    return figures


@dataclass
class BenchBus:
    """The secured broker, provisioned, with its registry running; how to start the other services."""

    admin: KafkaAccess
    topics: TopicNames
    schema_ids: dict[str, int]
    work: Path
    router_env: dict[str, str]
    router_ports: list[int]
    auditor_env: dict[str, str]
    monitor_env: dict[str, str]
    ports: dict[str, int]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/metrics"

    def start_observers(self, stack: ExitStack) -> None:
        """The auditor and the lag monitor."""
        for name, module, env in (
            ("auditor", "sharebus_audit", self.auditor_env),
            ("monitor", "sharebus_monitor", self.monitor_env),
        ):
            child = start_child(name, module, env, self.work / f"{name}.log", self.url(name), 120)
            stack.callback(child.stop)


def open_bus(
    stack: ExitStack, work: Path, catalogue: Catalogue, args: argparse.Namespace, figures: Figures
) -> BenchBus:
    broker = BrokerSettings(
        port=free_port(), controller_port=free_port(), data_dir=work / "kafka", heap=args.broker_heap
    )
    admin = start_broker(stack, broker)
    topics = TopicNames(f"scale-{uuid.uuid4().hex[:8]}")
    with timed(figures, "acls"):
        who = provision_access(admin, catalogue, topics.namespace, ("registry", "router", "auditor", "monitor"))
    keys = bus_keys(work / "keys")
    ports = {name: free_port() for name in ("registry", "auditor", "monitor")}
    registry_url = f"http://127.0.0.1:{ports['registry']}"
    env = {
        **keys.everyone,
        **PYTHON_ENV,
        **scrape_env(work),
        "SHAREBUS_NAMESPACE": topics.namespace,
        "SHAREBUS_REGISTRY_URL": registry_url,
        "SHAREBUS_REGISTRY_PORT": str(ports["registry"]),
        "SHAREBUS_CATALOGUE_DIR": str(work / "catalogue"),
        "SHAREBUS_ROUTER_LOG_LEVEL": args.router_log_level,
        "SHAREBUS_ROUTER_DELIVERY_PARTITIONS": str(args.delivery_partitions),
        "SHAREBUS_AUDITOR_METRICS_PORT": str(ports["auditor"]),
        "SHAREBUS_MONITOR_METRICS_PORT": str(ports["monitor"]),
    }
    registry = start_child(
        "registry", "sharebus_registry", {**env, **who["registry"].env()}, work / "registry.log", f"{registry_url}/", 60
    )
    stack.callback(registry.stop)
    schema_ids = provision(figures, admin, catalogue, topics, registry_url, args.delivery_partitions)
    return BenchBus(
        admin,
        topics,
        schema_ids,
        work,
        router_env={**env, **who["router"].env()},
        router_ports=[free_port() for _ in range(args.routers)],
        auditor_env={**env, **who["auditor"].env(), **keys.auditor},
        monitor_env={**env, **who["monitor"].env()},
        ports=ports,
    )


def scrape_all(figures: Figures, bus: BenchBus, routers: list[Child], work: Path, shards: int) -> None:
    """Every process's /metrics, as the project's Prometheus scrapes them (sharebus_cli.prometheus):
    catalogue-sized jobs in ``shards`` parts."""
    router_urls = [
        (router.name, f"http://127.0.0.1:{port}/metrics")
        for router, port in zip(routers, bus.router_ports, strict=True)
    ]
    for name, url in (*router_urls, ("monitor", bus.url("monitor"))):
        figures.metrics[name] = scrape(url, work / f"{name}.metrics.txt", shards)
    figures.metrics["auditor"] = scrape(bus.url("auditor"), work / "auditor.metrics.txt", 1)


def start_routers(stack: ExitStack, work: Path, env: dict[str, str], ports: list[int], figures: Figures) -> list[Child]:
    """The router workers, one group sharing the source partitions, each with its own port and data
    directory; all started at once and timed until every one is ready."""
    routers = []
    for i, port in enumerate(ports):
        name = "router" if i == 0 else f"router-{i + 1}"
        worker_env = {**env, "SHAREBUS_ROUTER_WEB_PORT": str(port), "SHAREBUS_ROUTER_DATA_DIR": str(work / name)}
        router = Child(name, "sharebus_router", worker_env, work / f"{name}.log").start()
        stack.callback(router.stop)
        routers.append(router)
    with timed(figures, "router_start_to_ready"):
        for router, port in zip(routers, ports, strict=True):
            router.wait_http(f"http://127.0.0.1:{port}/readyz", ROUTER_READY_TIMEOUT_S)
    return routers


@contextmanager
def timed(figures: Figures, name: str) -> Iterator[None]:
    start = time.monotonic()
    print(f"bench: {name} ...", flush=True)
    yield
    figures.timings_s[name] = elapsed = time.monotonic() - start
    print(f"bench: {name}: {elapsed:.1f}s", flush=True)


def provision(
    figures: Figures,
    admin: KafkaAccess,
    catalogue: Catalogue,
    topics: TopicNames,
    registry_url: str,
    delivery_partitions: int,
) -> dict[str, int]:
    """As the router provisions on start, timed; then again, which must find nothing to do."""
    # The router's own defaults (and its delivery partitions), so its start finds every topic as it would
    # have made it.
    defaults = RouterSettings.model_fields
    specs = catalogue_topics(
        catalogue,
        topics,
        delivery_partitions,
        defaults["delivery_retention_hours"].default,
        defaults["dead_letter_retention_hours"].default,
    ) + router_topics(topics, defaults["held_partitions"].default, defaults["held_retention_hours"].default)

    # As the router does: topics and schemas at once (sharebus_provision.bus), each timed too.
    def provision_all() -> BusProvisioning:
        return provision_bus(
            admin,
            specs,
            catalogue,
            topics,
            registry_url,
            auth_of(admin),
            timeout_s=120,
            public=defaults["public_delivery"].default,
        )

    with timed(figures, "provisioning"):
        first = provision_all()
    figures.timings_s["topics"], figures.timings_s["schemas"] = first.topics_s, first.schemas_s
    print(f"bench: of which topics {first.topics_s:.1f}s, schemas and projections {first.schemas_s:.1f}s", flush=True)
    with timed(figures, "reprovision"):
        again = provision_all()
    figures.notes.append(
        f"first run created {len(first.created)} topics and registered {len(first.schemas.registered)} class and "
        f"{len(first.projections)} projection schemas; the second created {len(again.created)} and registered "
        f"{len(again.schemas.registered)} and {len(again.projections)}"
    )
    return first.schemas.ids


def raw_latency(admin: KafkaAccess, work: Path, topics: TopicNames, args: argparse.Namespace) -> dict[str, float]:
    """A raw confluent-kafka passthrough at the same rate: the floor the router's latency compares to."""
    ns = topics.namespace
    source, sink = f"{ns}.raw.in", f"{ns}.raw.out"
    ensure_topics(admin, [TopicSpec(source, 3), TopicSpec(sink, 3)])
    raw = forwarder(
        "raw", "bench.raw_passthrough", {**admin.env(), **PYTHON_ENV}, work, source, sink, {"BENCH_APP_ID": f"{ns}-raw"}
    )
    raw.child.start()
    try:
        payloads = [(b"k", b"v" * 300)]
        publish(admin, source, payloads, 10, "warm", None)
        wait_for_count(admin, sink, 10, timeout_s=60, alive=raw.child.alive)
        total = int(args.steady_rate * args.steady_seconds)
        reader = LatencySink(admin, sink, "raw-steady").start()
        publish(admin, source, payloads, total, "raw-steady", args.steady_rate)
        reader.wait(total, timeout_s=120)
        got = reader.latencies_ms
    finally:
        raw.child.stop()
    return {"p50": percentile(got, 0.5), "p99": percentile(got, 0.99), "deliveries": len(got), "expected": total}


def peak_rss_mib(child: Child) -> float:
    """The child's peak resident set (VmHWM), from /proc; 0 when it cannot be read."""
    if child.process is None:
        return 0.0
    try:
        status = Path(f"/proc/{child.process.pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scrape(url: str, keep: Path, shards: int) -> dict[str, float]:
    """Series, exposition size, and bytes on the wire as Prometheus fetches it (it asks for gzip), over
    the ``shards`` parts of ``url``; ``largest_bytes`` and ``seconds`` are those of the largest and the
    slowest part."""
    figures = {"series": 0.0, "bytes": 0.0, "wire_bytes": 0.0, "largest_bytes": 0.0, "seconds": 0.0, "shards": shards}
    texts = []
    for index in range(shards):
        params = {"shard": str(index), "shards": str(shards)} if shards > 1 else {}
        started = time.monotonic()
        headers = {"Accept-Encoding": "gzip", **scrape_headers()}  # as Prometheus asks, with the scrape token
        response = httpx.get(url, params=params, timeout=60, headers=headers)
        response.raise_for_status()
        figures["seconds"] = max(figures["seconds"], time.monotonic() - started)
        texts.append(response.text)
        figures["series"] += sum(1 for line in response.text.splitlines() if line and not line.startswith("#"))
        figures["bytes"] += len(response.content)
        figures["largest_bytes"] = max(figures["largest_bytes"], len(response.content))
        figures["wire_bytes"] += response.num_bytes_downloaded
    keep.write_text("".join(texts))
    return figures


def report(f: Figures) -> None:
    t = f.timings_s
    print(
        f"\nsharebus over a generated {f.scale} catalogue: {f.classes} classes, {f.partitions} partitions each, "
        f"{f.delivery_partitions} per delivery topic, {f.routers} router worker(s)"
    )
    for name in (
        "acls",
        "topics",
        "schemas",
        "reprovision",
        "router_start_to_ready",
        "provisioning_plus_router_ready",
        "first_round_delivered",
    ):
        print(f"  {name:<32} {t.get(name, float('nan')):>8.1f} s")
    print(f"  {'router peak RSS (largest worker)':<32} {f.router_peak_rss_mib:>8.0f} MiB")
    total_series = sum(m["series"] for m in f.metrics.values())
    for name, m in f.metrics.items():
        print(
            f"  /metrics {name:<23} {m['series']:>8.0f} series {m['bytes'] / 1e6:>7.2f} MB in {m['shards']:.0f} "
            f"scrape(s), the largest {m['largest_bytes'] / 1e6:.2f} MB "
            f"({m['wire_bytes'] / 1e6:.2f} MB gzipped on the wire, slowest scrape {m['seconds']:.2f} s)"
        )
    print(f"  /metrics all processes          {total_series:>8.0f} series")
    ours, raw = f.latency_ms["sharebus"], f.latency_ms["raw"]
    print(
        f"  steady p50/p99 sharebus {ours['p50']:.1f}/{ours['p99']:.1f} ms "
        f"({ours['deliveries']:.0f}/{ours['expected']:.0f} deliveries), raw {raw['p50']:.1f}/{raw['p99']:.1f} ms"
    )
    print(f"  steady p99 sharebus/raw (one topic): {ours['p99'] / raw['p99']:.2f}")
    city = f.latency_ms.get("raw_city")
    if city is not None:
        print(
            f"  raw forwarder over the city's topics p50/p99 {city['p50']:.1f}/{city['p99']:.1f} ms "
            f"({city['deliveries']:.0f}/{city['expected']:.0f} deliveries); steady p99 sharebus/raw over the city: "
            f"{ours['p99'] / city['p99']:.2f}"
        )
    for name, figures in (("sharebus", ours), ("raw over the city", city)):
        if figures is None:
            continue
        print(
            f"  {name} by stage p50/p99: publish->forwarded {figures['publish_to_routed_p50']:.1f}/"
            f"{figures['publish_to_routed_p99']:.1f} ms, forwarded->received {figures['routed_to_received_p50']:.1f}/"
            f"{figures['routed_to_received_p99']:.1f} ms; the publisher's own send (publish->acknowledged) "
            f"{figures['publish_to_acked_p50']:.1f}/{figures['publish_to_acked_p99']:.1f} ms"
        )
    for name, cores in (("steady phase", f.steady_cpu), ("raw forwarder's steady phase", f.raw_city_cpu)):
        if cores:
            print(f"  cores used over the {name}: " + ", ".join(f"{k} {v}" for k, v in cores.items()))
    for note in f.notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    raise SystemExit(main())
