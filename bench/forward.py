"""Benchmark: records/s and publish->deliver latency of sharebus against bare Faust and raw confluent-kafka.

Run with ``make bench`` (or ``python -m bench.forward --records 100000``). One broker, the same records
for all three, each forwarder measured alone so they do not share the two cores:

- raw:      confluent-kafka consume -> produce (the broker's and client's ceiling)
- faust:    a bare Faust agent with the router's app settings and send path (Faust's ceiling)
- sharebus: the real router: wire-format check, schema lookup, Avro decode, rules, headers, counters

Throughput: N records are preloaded, then the forwarder drains them; the rate comes from the producer
timestamps of the output. Latency: a publisher sends at a steady rate, then flat out, while a sink
measures publish->deliver for each record.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench.measure import (
    LatencySink,
    high_watermarks,
    output_rate,
    percentile,
    produce,
    publish,
    wait_for_count,
)
from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_broker.launcher import free_port
from sharebus_broker.settings import user_cache_dir
from sharebus_cli.children import Child, start_child
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.key_files import bus_keys
from sharebus_core.registry_client import auth_of, registry_client
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_demo.fake import RecordFaker
from sharebus_provision import TopicSpec, ensure_topics, register_catalogue_schemas

BENCH_DIR = Path(__file__).resolve().parent
CLASS = "301001001/000001"
CONSUMER = "tax-levy"


@dataclass
class Result:
    name: str
    records: int
    throughput_rps: float
    steady_p50_ms: float
    steady_p99_ms: float
    flat_p50_ms: float
    flat_p99_ms: float


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


def preload(access: KafkaAccess, topic: str, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = access.producer({"linger.ms": 20, "acks": "all"})
    for i, (key, value) in enumerate(payloads):
        headers: list[tuple[str, str | bytes | None]] = [
            ("sharebus-class", CLASS.encode()),
            ("sharebus-provider", b"AMR"),
            ("sharebus-record-id", f"pre-{i}".encode()),
            ("sharebus-published-ns", b"0"),
        ]
        produce(producer, topic, key, value, headers)
    producer.flush(120)


def measure(
    name: str,
    child: Child,
    access: KafkaAccess,
    source: str,
    sink: str,
    payloads: list[tuple[bytes, bytes]],
    args: argparse.Namespace,
) -> Result:
    n = len(payloads)
    # Earlier rounds left records in the sink; this round's output starts at the current ends.
    start = high_watermarks(access, sink)
    before = sum(tp.offset for tp in start)
    child.start()
    try:
        got = wait_for_count(access, sink, before + n, timeout_s=600, alive=child.alive) - before
        if got < n or not child.alive():
            raise SystemExit(f"{name}: only {got}/{n} records came out. Log {child.log_path}:\n{child.tail()}")
        rate = output_rate(access, start, n)
        latencies = {}
        for phase, total, pace in (
            ("steady", int(args.steady_rate * args.steady_seconds), args.steady_rate),
            ("flat", args.flat_records, None),
        ):
            sink_reader = LatencySink(access, sink, f"{name}-{phase}").start()
            publish(access, source, payloads, total, f"{name}-{phase}", pace)
            sink_reader.wait(total, timeout_s=300)
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


Forwarder = tuple[Child, str, str]


def forwarder(
    name: str, module: str, env: dict[str, str], work: Path, source: str, sink: str, extra: dict[str, str]
) -> Forwarder:
    child_env = {**env, "BENCH_SOURCE": source, "BENCH_SINK": sink, **extra}
    return Child(name, module, child_env, work / f"{name}.log"), source, sink


def router_forwarder(
    name: str, env: dict[str, str], work: Path, topics: TopicNames, extra: dict[str, str]
) -> Forwarder:
    return forwarder(
        name,
        "sharebus_router",
        env,
        work,
        topics.source(CLASS),
        topics.delivery(CONSUMER),
        {
            "SHAREBUS_CATALOGUE_DIR": str(BENCH_DIR / "catalogue"),
            "SHAREBUS_ROUTER_LOG_LEVEL": "warning",
            "SHAREBUS_ROUTER_DATA_DIR": str(work / name),
            "SHAREBUS_ROUTER_WEB_PORT": str(free_port()),
            **extra,
        },
    )


def foundation_checkout(ref: str) -> Path:
    """A worktree of ``ref`` under the user's cache, reused across runs; returns its services directory."""
    repo = BENCH_DIR.parent
    sha = subprocess.run(["git", "rev-parse", ref], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    path = user_cache_dir() / "bench-worktrees" / sha[:12]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), sha], cwd=repo, check=True, capture_output=True
        )
    return path / "services"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.forward")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--steady-rate", type=float, default=1000.0)
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    parser.add_argument("--flat-records", type=int, default=20_000)
    parser.add_argument("--only", default="raw,faust,sharebus")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the median run is reported")
    parser.add_argument(
        "--foundation",
        metavar="GIT_REF",
        help="also measure the router at this commit (e.g. the foundation's), in the same run",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sharebus-bench-"))
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    topics = TopicNames(ns)
    catalogue = load_catalogue(BENCH_DIR / "catalogue")
    python_env = {"PYTHONUNBUFFERED": "1"}
    with ExitStack() as stack:
        if os.environ.get("SHAREBUS_BOOTSTRAP"):
            access = BusSettings().kafka
        else:
            broker = KafkaBroker(BrokerSettings(port=0, controller_port=0, data_dir=work / "kafka")).start()
            stack.callback(broker.stop)
            access = broker.admin_access
        registry_port = free_port()
        registry_url = f"http://127.0.0.1:{registry_port}"
        env = {
            **access.env(),
            "SHAREBUS_NAMESPACE": ns,
            "SHAREBUS_REGISTRY_URL": registry_url,
            "SHAREBUS_REGISTRY_PORT": str(registry_port),
            # The router reads grants only once verified: it needs the control plane's public key.
            **bus_keys(work / "keys").everyone,
            **python_env,
        }
        registry = start_child("registry", "sharebus_registry", env, work / "registry.log", f"{registry_url}/", 60)
        stack.callback(registry.stop)
        specs = [
            TopicSpec(topics.source(CLASS), 3),
            TopicSpec(topics.delivery(CONSUMER), 3),
            TopicSpec(topics.delivery("amr-reg"), 3),
            TopicSpec(topics.dead_letter, 3),
        ]
        specs += [TopicSpec(f"{ns}.{name}.{end}", 3) for name in ("raw", "faust") for end in ("in", "out")]
        ensure_topics(access, specs)
        register_catalogue_schemas(catalogue, topics, registry_url, auth_of(access))
        print(f"bench: encoding {args.records} records", flush=True)
        payloads = encode_records(
            registry_url, auth_of(access), topics.source(CLASS), catalogue.schema(CLASS).text, args.records
        )
        size = sum(len(v) for _, v in payloads) / len(payloads)
        results = []
        forwarders = {
            "raw": forwarder(
                "raw",
                "bench.raw_passthrough",
                env,
                work,
                f"{ns}.raw.in",
                f"{ns}.raw.out",
                {"BENCH_APP_ID": f"{ns}-raw"},
            ),
            "faust": forwarder(
                "faust",
                "bench.bare_faust",
                env,
                work,
                f"{ns}.faust.in",
                f"{ns}.faust.out",
                {
                    "BENCH_APP_ID": f"{ns}-bare",
                    "SHAREBUS_ROUTER_DATA_DIR": str(work / "faust"),
                    "SHAREBUS_ROUTER_WEB_PORT": str(free_port()),
                },
            ),
            "sharebus": router_forwarder("sharebus", env, work, topics, {}),
        }
        if args.foundation:
            # The same router at an earlier commit, in a namespace of its own (so its own consumer group).
            services = foundation_checkout(args.foundation)
            f_topics = TopicNames(f"{ns}-f")
            ensure_topics(access, [TopicSpec(f_topics.source(CLASS), 3), TopicSpec(f_topics.delivery(CONSUMER), 3)])
            forwarders["foundation"] = router_forwarder(
                "foundation",
                {**env, "SHAREBUS_NAMESPACE": f_topics.namespace},
                work,
                f_topics,
                {"PYTHONPATH": str(services)},
            )
        names = args.only.split(",") + (["foundation"] if args.foundation else [])
        runs: dict[str, list[Result]] = {name: [] for name in names}
        # Interleaved rounds: a slow spell of the machine hits every forwarder, not just one.
        for round_no in range(1, args.rounds + 1):
            for name in names:
                child, source, sink = forwarders[name]
                print(f"bench: round {round_no}: preloading {args.records} records into {source}", flush=True)
                preload(access, source, payloads)
                print(f"bench: round {round_no}: measuring {name}", flush=True)
                runs[name].append(measure(name, child, access, source, sink, payloads, args))
                print(f"bench: {asdict(runs[name][-1])}", flush=True)
        results = [median_run(runs[name]) for name in names]
    report(results, size, args, runs)
    return 0


def median_run(runs: list[Result]) -> Result:
    """The run with the median throughput (its latencies come with it)."""
    return sorted(runs, key=lambda r: r.throughput_rps)[len(runs) // 2]


def report(results: list[Result], size: float, args: argparse.Namespace, runs: dict[str, list[Result]]) -> None:
    by_name = {r.name: r for r in results}
    print(
        f"\nsharebus forward benchmark: {results[0].records} records of ~{size:.0f} bytes, one broker, "
        f"steady {args.steady_rate:.0f}/s for {args.steady_seconds:.0f}s, flat-out burst {args.flat_records}"
    )
    print(
        f"{'forwarder':<10} {'records/s':>10} {'steady p50':>11} {'steady p99':>11} {'flat p50':>10} {'flat p99':>10}"
    )
    for r in results:
        print(
            f"{r.name:<10} {r.throughput_rps:>10.0f} {r.steady_p50_ms:>9.1f}ms {r.steady_p99_ms:>9.1f}ms "
            f"{r.flat_p50_ms:>8.0f}ms {r.flat_p99_ms:>8.0f}ms"
        )
    for name, rs in runs.items():
        print(f"  {name}: records/s per round {', '.join(f'{r.throughput_rps:.0f}' for r in rs)}")
    ratios = {}
    pairs = [("sharebus", "faust"), ("sharebus", "raw"), ("sharebus", "foundation"), ("foundation", "faust")]
    for name, base in pairs:
        if name in by_name and base in by_name:
            ratio = by_name[name].throughput_rps / by_name[base].throughput_rps
            ratios[f"{name}/{base}"] = ratio
            print(
                f"throughput {name}/{base}: {ratio:.2f}   steady p99 {name}/{base}: "
                f"{by_name[name].steady_p99_ms / by_name[base].steady_p99_ms:.2f}"
            )
    out = BENCH_DIR / "results"
    out.mkdir(exist_ok=True)
    path = out / f"forward-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "results": [asdict(r) for r in results],
                "runs": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
                "ratios": ratios,
                "record_bytes": size,
                "args": vars(args),
            },
            indent=2,
        )
    )
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
