"""Lists dead letters and re-publishes chosen ones to where they came from, once the cause is fixed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from sharebus_core.errors import SharebusError
from sharebus_core.headers import header_map
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import read_topic
from sharebus_router.dead_letters import (
    DLQ_DATA_CLASS,
    DLQ_DETAIL,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)

REPLAYED_FROM = "sharebus-replayed-from"
_DLQ_HEADERS = {DLQ_REASON, DLQ_DETAIL, DLQ_SOURCE_TOPIC, DLQ_SOURCE_PARTITION, DLQ_SOURCE_OFFSET, DLQ_DATA_CLASS}


class ReplayError(SharebusError, RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    offset: int
    reason: str
    detail: str
    data_class: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    # The record's own headers, as published, without the dead-letter ones.
    original_headers: tuple[tuple[str, bytes], ...]

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


def _dead_letter(msg: Message) -> DeadLetter:
    meta = header_map(msg.headers())

    def text(name: str) -> str:
        return meta.get(name, b"").decode("utf-8", "replace")

    original = tuple((k, v) for k, v in meta.items() if k not in _DLQ_HEADERS)
    return DeadLetter(
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        reason=text(DLQ_REASON),
        detail=text(DLQ_DETAIL),
        data_class=text(DLQ_DATA_CLASS),
        source_topic=text(DLQ_SOURCE_TOPIC),
        source_partition=int(text(DLQ_SOURCE_PARTITION) or -1),
        source_offset=int(text(DLQ_SOURCE_OFFSET) or -1),
        key=msg.key(),
        value=msg.value(),
        original_headers=original,
    )


def list_dead_letters(
    access: KafkaAccess, topic: str, reason: str | None = None, data_class: str | None = None
) -> list[DeadLetter]:
    letters = [_dead_letter(m) for m in read_topic(access, topic)]
    return [
        d
        for d in letters
        if (reason is None or d.reason == reason) and (data_class is None or d.data_class == data_class)
    ]


def replay(access: KafkaAccess, topic: str, letters: Iterable[DeadLetter]) -> int:
    """Publishes each letter's original key, value and headers to its source topic again; returns how many.

    The copy carries ``sharebus-replayed-from: <dlq>:<partition>:<offset>`` so it can be traced back.
    """
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err.str())

    producer = access.producer({"acks": "all", "enable.idempotence": True})
    count = 0
    for letter in letters:
        if not letter.source_topic:
            raise ReplayError(f"dead letter {letter.position} does not say where it came from")
        headers: list[tuple[str, str | bytes | None]] = [
            *letter.original_headers,
            (REPLAYED_FROM, f"{topic}:{letter.position}".encode()),
        ]
        producer.produce(
            letter.source_topic, key=letter.key, value=letter.value, headers=headers, on_delivery=on_delivery
        )
        count += 1
    if producer.flush(30) or errors:
        raise ReplayError(f"replaying dead letters failed: {errors or 'not acknowledged'}")
    return count
