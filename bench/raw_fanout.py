"""The city's floor: a confluent-kafka consume -> produce loop over every source topic, copying each
record's bytes to the delivery topics the router would send it to, with no decoding, rules or audit.

``bench.scale`` runs it over the city's own topics (the router stopped), so that the router's steady
latency compares with what the same broker gives a raw client over the same 9,510 partitions.
``BENCH_ROUTES`` names a JSON file: ``{source topic: [delivery topic, ...]}``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from confluent_kafka import KafkaError, Message

from sharebus_core.settings import BusSettings


def main() -> int:
    routes: dict[str, list[str]] = json.loads(Path(os.environ["BENCH_ROUTES"]).read_text())
    # The router's listener (no forced re-authentication), as its own clients use.
    access = BusSettings().kafka.streaming()
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    consumer = access.consumer(
        {
            "group.id": os.environ["BENCH_APP_ID"],
            # From the start: the warm round is not lost to a slow assignment (the phases before are not measured).
            "auto.offset.reset": "earliest",
            # The router's bound on prefetched records over all its partitions (sharebus_router.data_path).
            "queued.max.messages.kbytes": 16384,
        }
    )
    producer = access.producer({"acks": "all", "linger.ms": 5, "enable.idempotence": True})
    consumer.subscribe(sorted(routes))
    # produce() -> acknowledged, so that a slow sink and a slow send are told apart in the log.
    acked_ms: list[float] = []

    def acknowledged(error: KafkaError | None, msg: Message) -> None:
        if error is None:
            acked_ms.append(time.time() * 1000 - msg.timestamp()[1])

    while not stop:
        # Wait for one record, then take whatever else is already here: batches without added latency.
        first = consumer.poll(0.1)
        if first is None:
            continue
        for msg in [first, *consumer.consume(999, 0)]:
            topic = msg.topic()
            if msg.error() is not None or topic is None:
                continue
            for sink in routes.get(topic, ()):
                producer.produce(
                    sink, value=msg.value(), key=msg.key(), headers=msg.headers(), on_delivery=acknowledged
                )
        producer.poll(0)
    producer.flush(10)
    consumer.close()
    acked_ms.sort()
    if acked_ms:
        p50, p99 = acked_ms[len(acked_ms) // 2], acked_ms[int(len(acked_ms) * 0.99)]
        print(f"raw forwarder: {len(acked_ms)} sends acknowledged, p50/p99 {p50:.1f}/{p99:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
