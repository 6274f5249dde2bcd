"""One record written and acknowledged: for control events (grants, backfill requests), not data."""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka import KafkaError, Message

from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess


class ProduceFailed(SharebusError, RuntimeError):
    pass


class Written(NamedTuple):
    """Where an acknowledged record is: a follower of the topic has read it once past ``offset``."""

    partition: int
    offset: int


def produce_confirmed(access: KafkaAccess, topic: str, key: bytes, value: bytes, timeout_s: float = 30.0) -> Written:
    """Appends one record and returns where, once Kafka has acknowledged it (acks=all)."""
    errors: list[str] = []
    written: list[Written] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err.str())
        else:
            written.append(Written(msg.partition() or 0, msg.offset() or 0))

    producer = access.producer({"acks": "all", "enable.idempotence": True})
    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    if producer.flush(timeout_s) or errors or not written:
        raise ProduceFailed(f"writing {key.decode(errors='replace')} to {topic} failed: {errors or 'not acknowledged'}")
    return written[0]
