"""One record written and acknowledged: for control events (grants, backfill requests), not data."""

from __future__ import annotations

from confluent_kafka import KafkaError

from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess


class ProduceFailed(SharebusError, RuntimeError):
    pass


def produce_confirmed(access: KafkaAccess, topic: str, key: bytes, value: bytes, timeout_s: float = 30.0) -> None:
    """Appends one record and returns once Kafka has acknowledged it (acks=all)."""
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err.str())

    producer = access.producer({"acks": "all", "enable.idempotence": True})
    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    if producer.flush(timeout_s) or errors:
        raise ProduceFailed(f"writing {key.decode(errors='replace')} to {topic} failed: {errors or 'not acknowledged'}")
