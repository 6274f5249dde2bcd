"""Duplicates a rebalance sends to the delivery topic, per kind of rebalance, before any SDK de-duplication.

Router workers in one group route one class at a steady rate. In each phase a fixed number of
records is published, and half-way through the group changes: a second worker joins, leaves
cleanly (SIGTERM), joins again, and is SIGKILLed. A reader counts every message on the delivery
topic by record id: the repeats of a phase are its messages minus its distinct records. Figures are
scaled to 200,000 records, the size the stock figure was measured at: bare Faust (at-least-once,
no commit on revocation) repeated ~1,230 records per 200,000 when one worker joined. ``--stock``
measures that baseline again here (bench/bare_faust.py, one worker joining).

    python -m bench.rebalance [--records 20000] [--rate 2000] [--stock]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from confluent_kafka import OFFSET_END, TopicPartition

from bench.measure import publish
from bench.rig import BENCH_DIR, CLASS, CONSUMER, Rig, open_rig, start_broker
from sharebus_broker import BrokerSettings
from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child
from sharebus_core import headers as h
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings

STOCK_PER_200K = 1230
SCALE = 200_000


class DeliveryCounter:
    """Reads a topic from its current end in a thread; counts messages and distinct ids per phase."""

    def __init__(self, access: KafkaAccess, topic: str) -> None:
        self.access, self.topic = access, topic
        self.messages: Counter[str] = Counter()
        self.ids: dict[str, set[bytes]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> DeliveryCounter:
        self._thread.start()
        self._ready.wait(30)
        return self

    def _run(self) -> None:
        consumer = self.access.consumer({"group.id": f"bench-count-{time.time_ns()}", "enable.auto.commit": False})
        partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        consumer.assign([TopicPartition(self.topic, p, OFFSET_END) for p in partitions])
        for p in partitions:  # resolve the end positions before anything is published
            consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
        consumer.poll(0.5)
        self._ready.set()
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None or msg.error() is not None:
                    continue
                record_id = h.header_map(msg.headers()).get(h.RECORD_ID, b"")
                phase = record_id.rsplit(b"-", 1)[0].decode()
                with self._lock:
                    self.messages[phase] += 1
                    self.ids.setdefault(phase, set()).add(record_id)
        finally:
            consumer.close()

    def counts(self, phase: str) -> tuple[int, int]:
        """(messages, distinct records) of a phase so far."""
        with self._lock:
            return self.messages[phase], len(self.ids.get(phase, ()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_distinct(counter: DeliveryCounter, phase: str, total: int, timeout_s: float = 300.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        distinct = counter.counts(phase)[1]
        if distinct >= total:
            time.sleep(3)  # late repeats of the phase still arriving are counted too
            return counter.counts(phase)
        time.sleep(0.2)
    raise SystemExit(f"{phase}: only {counter.counts(phase)[1]}/{total} records were delivered")


def router(rig: Rig, name: str) -> tuple[Child, str]:
    port = free_port()
    env = {
        **rig.router_env,
        "SHAREBUS_CATALOGUE_DIR": str(BENCH_DIR / "catalogue"),
        "SHAREBUS_ROUTER_LOG_LEVEL": "warning",
        "SHAREBUS_ROUTER_DATA_DIR": str(rig.work / name),
        "SHAREBUS_ROUTER_WEB_PORT": str(port),
    }
    return Child(name, "sharebus_router", env, rig.work / f"{name}.log"), f"http://127.0.0.1:{port}/readyz"


def stock(rig: Rig, name: str) -> tuple[Child, str]:
    ns = rig.topics.namespace
    env = {
        **rig.env,
        "BENCH_SOURCE": f"{ns}.faust.in",
        "BENCH_SINK": f"{ns}.faust.out",
        "BENCH_APP_ID": f"{ns}-bare",
        "SHAREBUS_ROUTER_DATA_DIR": str(rig.work / name),
        "SHAREBUS_ROUTER_WEB_PORT": str(free_port()),
    }
    return Child(name, "bench.bare_faust", env, rig.work / f"{name}.log"), ""


def phase(
    rig: Rig, counter: DeliveryCounter, source: str, name: str, records: int, rate: float, event: Callable[[], object]
) -> int:
    """Publishes ``records`` at ``rate``, runs ``event`` half-way, and returns the phase's repeats."""
    sender = threading.Thread(target=publish, args=(rig.access, source, rig.payloads, records, name, rate))
    sender.start()
    time.sleep(records / rate / 2)
    event()
    sender.join()
    messages, distinct = wait_distinct(counter, name, records)
    print(f"bench: {name}: {messages} messages for {distinct} records", flush=True)
    return messages - distinct


def started(stack: ExitStack, child: Child, ready_url: str, timeout_s: float = 120.0) -> Child:
    child.start()
    stack.callback(child.stop)
    if ready_url:
        child.wait_http(ready_url, timeout_s)
    return child


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="records published per phase")
    parser.add_argument("--rate", type=float, default=2000.0, help="records/s while a phase publishes")
    parser.add_argument("--stock", action="store_true", help="also measure bare Faust with one worker joining")
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="sharebus-rebalance-"))
        if os.environ.get("SHAREBUS_BOOTSTRAP"):
            access = BusSettings().kafka
        else:
            access = start_broker(stack, BrokerSettings(port=0, controller_port=0, data_dir=work / "kafka"))
        rig = open_rig(stack, work, access, 2000)
        source = rig.topics.source(CLASS)
        counter = DeliveryCounter(access, rig.topics.delivery(CONSUMER)).start()
        stack.callback(counter.stop)
        first = started(stack, *router(rig, "router-1"))
        # Warm up: the first worker routes before anything is measured.
        phase(rig, counter, source, "warmup", 500, 500.0, lambda: None)
        workers: list[Child] = []
        repeats: dict[str, int] = {}

        def join() -> None:
            workers.append(started(stack, *router(rig, f"router-{len(workers) + 2}")))

        repeats["join"] = phase(rig, counter, source, "join", args.records, args.rate, join)
        repeats["leave"] = phase(rig, counter, source, "leave", args.records, args.rate, lambda: workers[-1].stop())
        repeats["rejoin"] = phase(rig, counter, source, "rejoin", args.records, args.rate, join)
        repeats["kill"] = phase(rig, counter, source, "kill", args.records, args.rate, lambda: workers[-1].kill())
        assert first.alive(), first.tail()
        if args.stock:
            faust_counter = DeliveryCounter(access, f"{rig.topics.namespace}.faust.out").start()
            stack.callback(faust_counter.stop)
            started(stack, *stock(rig, "faust-1"))
            faust_in = f"{rig.topics.namespace}.faust.in"
            phase(rig, faust_counter, faust_in, "warmup", 500, 500.0, lambda: None)

            def faust_join() -> None:
                started(stack, *stock(rig, "faust-2"))

            repeats["stock faust, join"] = phase(
                rig, faust_counter, faust_in, "join", args.records, args.rate, faust_join
            )
    print(f"\nrepeats on the delivery topic per rebalance ({args.records} records per phase at {args.rate:.0f}/s)")
    print(
        f"{'rebalance':<20} {'repeats':>8} {'per 200k':>9}   stock Faust, one worker joining: {STOCK_PER_200K} per 200k"
    )
    for kind, count in repeats.items():
        print(f"{kind:<20} {count:>8} {count * SCALE / args.records:>9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
