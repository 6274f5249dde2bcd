"""The broker's and client's ceiling: a confluent-kafka consume -> produce loop with no processing."""

from __future__ import annotations

import os
import signal
import sys

from sharebus_core.settings import BusSettings


def main() -> int:
    access, source, sink = BusSettings().kafka, os.environ["BENCH_SOURCE"], os.environ["BENCH_SINK"]
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    consumer = access.consumer({"group.id": os.environ["BENCH_APP_ID"], "auto.offset.reset": "earliest"})
    producer = access.producer({"acks": "all", "linger.ms": 5})
    consumer.subscribe([source])
    while not stop:
        # Wait for one record, then take whatever else is already here: batches without added latency.
        first = consumer.poll(0.1)
        if first is None:
            continue
        for msg in [first, *consumer.consume(999, 0)]:
            if msg.error() is None:
                producer.produce(sink, value=msg.value(), key=msg.key(), headers=msg.headers())
        producer.poll(0)
    producer.flush(10)
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
