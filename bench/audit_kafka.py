"""The auditor on a real broker: how fast it catches up a backlog, and whether its lag grows at a steady rate.

``python -m bench.audit_kafka [--records 100000] [--rate 50000] [--seconds 20] [--decisions 2]``
(``make bench-audit-kafka``). One broker (SASL_SSL, as everywhere), the auditor's own principal and ACLs,
its signing key, and the auditor itself (``python -m sharebus_audit``) as a child process. Facts are
planted on ``<ns>.audit.facts`` as the router sends them (200 record facts a message, keyed by source
partition), so no router runs and the figures are the auditor's alone:

1. **catch-up**: ``--records`` record facts wait before the auditor starts; the time from its first
   chained event to the last gives the events (and records) per second it sustains with Kafka;
   its own CPU time over the same span gives what it sustains per core, whatever else the machine runs;
2. **steady**: facts are published at ``--rate`` records/s for ``--seconds``; every second the lag (events
   published minus ``sharebus_audit_events_total``) is sampled. The auditor keeps up when the lag of
   the last third of the run is no larger than that of the first third (it does not grow), and when it
   is back to zero soon after publishing stops.

The machine's other load counts: on a shared 2-core machine the broker, the publisher and the auditor
share the cores. Results go to ``bench/results/audit-kafka-*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.rig import BENCH_DIR, PYTHON_ENV, scrape_env, start_broker, write_results
from sharebus_access.credentials import provision_access
from sharebus_broker import BrokerSettings
from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.key_files import bus_keys
from sharebus_core.scrape_auth import scrape_headers
from sharebus_core.topics import TopicNames
from sharebus_provision import AUDIT_PARTITIONS, audit_topics, ensure_topics

FACTS_PER_MESSAGE = 200


def message(first: int, decisions: int) -> bytes:
    """One facts message as the router writes it: ``FACTS_PER_MESSAGE`` record facts."""
    now = time.time()
    records: list[dict[str, Any]] = [
        {
            "time": now,
            "provider": "AMR",
            "data_class": "301001001/000001",
            "mode": "realtime",
            "key": f"E{seq}",
            "trace_id": f"trace-{seq}",
            "record_id": f"0f3c2a1b-1234-5678-9abc-{seq:012d}",
            "source": {"topic": "bench.src", "partition": seq % 3, "offset": seq},
            "quality": {"failed": [], "filled": 11, "fields": 12},
            "decisions": [
                {
                    "consumer": f"c{i}",
                    "grant_id": "g",
                    "decision": "deliver",
                    "reason": None,
                    "payload_sha256": "0" * 64,
                }
                for i in range(decisions)
            ],
        }
        for seq in range(first, first + FACTS_PER_MESSAGE)
    ]
    return json.dumps({"records": records}, ensure_ascii=False, separators=(",", ":")).encode()


class Publisher:
    def __init__(self, access: KafkaAccess, topic: str, decisions: int) -> None:
        self.producer = access.producer({"enable.idempotence": True, "linger.ms": 5})
        self.topic = topic
        self.decisions = decisions
        self.sent = 0  # messages
        # A few distinct messages, sent round-robin: the auditor reads each one as new facts.
        self.pool = [message(i * FACTS_PER_MESSAGE, decisions) for i in range(16)]

    def send(self, messages: int) -> None:
        for _ in range(messages):
            partition = self.sent % AUDIT_PARTITIONS
            value = self.pool[self.sent % len(self.pool)]
            while True:
                try:
                    self.producer.produce(
                        self.topic, key=f"bench.src:{partition}".encode(), value=value, partition=partition
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.sent += 1
        self.producer.poll(0)

    @property
    def events(self) -> int:
        return self.sent * FACTS_PER_MESSAGE * self.decisions

    def flush(self) -> None:
        if self.producer.flush(60):
            raise RuntimeError("bench: facts not delivered within 60 s")


def cpu_seconds(child: Child) -> float:
    """The child's CPU time so far (user + system, from /proc): what it cost, whatever else the machine ran."""
    assert child.process is not None
    fields = Path(f"/proc/{child.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chained(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=5, headers=scrape_headers()).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sharebus_audit_events_total"
    )


def catch_up(publisher: Publisher, auditor: Child, url: str, timeout_s: float) -> dict[str, float]:
    """From the auditor's first chained event to the whole planted backlog chained: wall time, and the
    auditor's own CPU time (what one core of its own would take)."""
    target = publisher.events
    deadline = time.monotonic() + timeout_s
    first: tuple[float, float, float] | None = None  # (when, events chained, CPU seconds)
    done = 0.0
    while time.monotonic() < deadline:
        done, cpu = chained(url), cpu_seconds(auditor)
        if done > 0 and first is None:
            first = (time.monotonic(), done, cpu)
        if done >= target:
            break
        time.sleep(0.05)
    if first is None or done < target:
        raise RuntimeError(f"bench: the auditor chained {done:.0f} of {target} events within {timeout_s} s")
    elapsed = max(time.monotonic() - first[0], 1e-3)
    events = done - first[1]
    rate, per_cpu = events / elapsed, events / max(cpu - first[2], 1e-3)
    return {
        "events": target,
        "seconds": elapsed,
        "events_per_s": rate,
        "records_per_s": rate / publisher.decisions,
        "events_per_cpu_s": per_cpu,
        "records_per_cpu_s": per_cpu / publisher.decisions,
    }


def steady(publisher: Publisher, auditor: Child, url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Publishes ``rate`` records/s for ``seconds``, sampling the lag (events not yet chained) each second."""
    base_sent, base_chained, base_cpu = publisher.events, chained(url), cpu_seconds(auditor)
    lags: list[float] = []
    started = time.monotonic()
    per_tick = rate / FACTS_PER_MESSAGE / 10  # messages per 0.1 s
    owed = 0.0
    next_sample = started + 1.0
    while (now := time.monotonic()) - started < seconds:
        owed += per_tick
        publisher.send(int(owed))
        owed -= int(owed)
        if now >= next_sample:
            lags.append((publisher.events - base_sent) - (chained(url) - base_chained))
            next_sample += 1.0
        time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
    achieved = (publisher.events - base_sent) / publisher.decisions / (time.monotonic() - started)
    publisher.flush()
    stopped = time.monotonic()
    target = publisher.events - base_sent + base_chained
    while chained(url) < target and time.monotonic() - stopped < 120:
        time.sleep(0.2)
    drained = time.monotonic() - stopped
    cpu = cpu_seconds(auditor) - base_cpu
    third = max(len(lags) // 3, 1)
    first, last = statistics.median(lags[:third]), statistics.median(lags[-third:])
    return {
        "rate_asked": rate,
        "records_per_s_published": achieved,
        "lag_events_each_s": lags,
        "lag_first_third": first,
        "lag_last_third": last,
        "drained_after_s": drained,
        # The auditor's share of a core while it kept up (idle polls included).
        "auditor_cores": cpu / (time.monotonic() - started),
        "kept_up": last <= max(first, rate * publisher.decisions * 0.5) and chained(url) >= target,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000, help="record facts of the catch-up backlog")
    parser.add_argument("--rate", type=float, default=50_000, help="records/s of the steady phase")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--decisions", type=int, default=2, help="decisions (audit events) per record")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        admin = start_broker(
            stack, BrokerSettings(port=free_port(), controller_port=free_port(), data_dir=work / "kafka")
        )
        topics = TopicNames(f"bench-{uuid.uuid4().hex[:8]}")
        who = provision_access(admin, load_catalogue(BENCH_DIR / "catalogue"), topics.namespace, ("auditor",))
        ensure_topics(admin, audit_topics(topics))
        publisher = Publisher(admin, topics.audit_facts, args.decisions)
        print(f"bench: planting {args.records} record facts ({args.records * args.decisions} events)", flush=True)
        publisher.send(-(-args.records // FACTS_PER_MESSAGE))
        publisher.flush()
        port = free_port()
        url = f"http://127.0.0.1:{port}/metrics"
        env = {
            **who["auditor"].env(),
            **bus_keys(work / "keys").auditor,
            **PYTHON_ENV,
            **scrape_env(work),
            "SHAREBUS_NAMESPACE": topics.namespace,
            "SHAREBUS_AUDITOR_METRICS_PORT": str(port),
        }
        auditor = start_child("auditor", "sharebus_audit", env, work / "auditor.log", url, 120)
        stack.callback(auditor.stop)
        backlog = catch_up(publisher, auditor, url, 600)
        print(
            f"catch-up: {backlog['events']:,} events in {backlog['seconds']:.1f} s = "
            f"{backlog['events_per_s']:,.0f} events/s ({backlog['records_per_s']:,.0f} records/s); per CPU second "
            f"of the auditor {backlog['events_per_cpu_s']:,.0f} events ({backlog['records_per_cpu_s']:,.0f} records)",
            flush=True,
        )
        rate = steady(publisher, auditor, url, args.rate, args.seconds)
        print(
            f"steady: asked {args.rate:,.0f} records/s, published {rate['records_per_s_published']:,.0f}; lag in "
            f"events, median of the first third {rate['lag_first_third']:,.0f}, of the last third "
            f"{rate['lag_last_third']:,.0f}; zero again {rate['drained_after_s']:.1f} s after publishing stopped; "
            f"auditor CPU {rate['auditor_cores']:.2f} cores; "
            f"{'kept up' if rate['kept_up'] else 'FELL BEHIND'}"
        )
        write_results("audit-kafka", {"args": vars(args), "catch_up": backlog, "steady": rate})
        del publisher  # its producer goes before the broker does, quietly
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
