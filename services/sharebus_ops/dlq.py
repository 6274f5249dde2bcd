"""Lists dead letters and re-publishes chosen ones to where they came from, once the cause is fixed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from sharebus_core.errors import SharebusError
from sharebus_core.headers import header_list, header_map
from sharebus_core.kafka import KafkaAccess, UnreadableHeaders, message_headers
from sharebus_core.topic_reader import RangeReader, TopicReadError, read_topic
from sharebus_router.dead_letters import (
    DLQ_DATA_CLASS,
    DLQ_DETAIL,
    DLQ_OMITTED,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)

REPLAYED_FROM = "sharebus-replayed-from"
# The source record a copy was replayed from, ``<topic>:<partition>:<offset>``: whatever letter named it
# (a record can be dead-lettered more than once), the record goes back once (``sharebus dlq replay``).
REPLAYED_SOURCE = "sharebus-replayed-source"
# The replay's own headers: an earlier replay's (the copy failed again) are not the record's.
_REPLAY_HEADERS = {REPLAYED_FROM, REPLAYED_SOURCE}
_DLQ_HEADERS = {
    DLQ_REASON,
    DLQ_DETAIL,
    DLQ_SOURCE_TOPIC,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_OFFSET,
    DLQ_DATA_CLASS,
    DLQ_OMITTED,
}
Headers = list[tuple[str, str | bytes | None]]


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
    # What the router left out to keep the letter within the message limit ("value,headers", ...); "": nothing.
    omitted: str = ""

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def source(self) -> str:
        """The source record the letter was made of, as ``REPLAYED_SOURCE`` names it."""
        return f"{self.source_topic}:{self.source_partition}:{self.source_offset}"


def _dead_letter(msg: Message) -> DeadLetter:
    meta = header_map(msg.headers())

    def text(name: str) -> str:
        return meta.get(name, b"").decode("utf-8", "replace")

    # From the list, not the map: a header the record carried twice goes back twice, in its place.
    original = tuple((k, v) for k, v in header_list(msg.headers()) if k not in _DLQ_HEADERS)
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
        omitted=text(DLQ_OMITTED),
    )


def list_dead_letters(
    access: KafkaAccess, topic: str, reason: str | None = None, data_class: str | None = None
) -> list[DeadLetter]:
    return chosen([_dead_letter(m) for m in read_topic(access, topic)], reason, data_class)


def chosen(letters: Iterable[DeadLetter], reason: str | None, data_class: str | None) -> list[DeadLetter]:
    """The letters of ``reason`` and ``data_class`` (None: any). A reason names its letters whole, or the
    family before a rule's id: ``quality`` chooses every ``quality:<field>:<kind>`` letter."""
    return [
        d
        for d in letters
        if (reason is None or d.reason == reason or d.reason.partition(":")[0] == reason)
        and (data_class is None or d.data_class == data_class)
    ]


Original = Callable[[KafkaAccess, DeadLetter], Message | None]


def read_original(access: KafkaAccess, letter: DeadLetter) -> Message | None:
    """The record a letter was made of, read back from its source topic (None: retention removed it)."""
    start = letter.source_offset
    reader = RangeReader(access, letter.source_topic, letter.source_partition, start, start + 1)
    try:
        found = reader.next_chunk(1)
    finally:
        reader.close()
    return found[0] if found and found[0].offset() == start else None


def _as_published(
    access: KafkaAccess, letter: DeadLetter, original: Original
) -> tuple[bytes | None, bytes | None, Headers]:
    """The key, value and headers the letter's record was published with.

    A letter that had to leave some of them out (an oversized record: ``sharebus-dlq-omitted``) holds
    only where the record is: replaying the letter itself would publish an empty record in its place.
    """
    if not letter.omitted:
        return letter.key, letter.value, list(letter.original_headers)
    try:
        found = original(access, letter) if letter.source_offset >= 0 else None
    except TopicReadError as exc:
        what = f"dead letter {letter.position}: cannot read its record from {letter.source_topic}: {exc}"
        raise ReplayError(what) from exc
    if found is None:
        raise ReplayError(
            f"dead letter {letter.position} left out its {letter.omitted}, and its record is no longer at "
            f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        )
    try:
        headers = message_headers(found)
    except UnreadableHeaders as exc:
        raise ReplayError(f"dead letter {letter.position}: its record cannot be replayed as it was: {exc}") from exc
    # Valueless headers dropped, as the letter itself drops them (dead_letter_headers).
    return found.key(), found.value(), list(header_list(headers))


def replay(access: KafkaAccess, topic: str, letters: Iterable[DeadLetter], original: Original = read_original) -> int:
    """Publishes each letter's original key, value and headers to its source topic again; returns how many.

    The copy goes to the partition its record came from, so it follows every record of its key there and
    is after its record: a later replay finds it by reading the partition from the record on, not the whole
    topic. It carries ``sharebus-replayed-from: <dlq>:<partition>:<offset>`` (the letter) and
    ``sharebus-replayed-source: <topic>:<partition>:<offset>`` (the record), so it can be traced back and
    its record is not replayed again whatever letter names it. What a
    letter left out is read from its source topic; a letter whose record cannot be found is refused,
    before anything is published. When Kafka refuses or does not acknowledge some copies, ``ReplayError``
    says which letters went out and which did not, so that only those are replayed again.
    """
    chosen = list(letters)
    for letter in chosen:
        if not letter.source_topic:
            raise ReplayError(f"dead letter {letter.position} does not say where it came from")
    records = [(letter, *_as_published(access, letter, original)) for letter in chosen]
    producer = access.producer({"acks": "all", "enable.idempotence": True})
    acknowledged: set[str] = set()
    refused: dict[str, str] = {}

    def outcome(position: str) -> Callable[[KafkaError | None, object], None]:
        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is None:
                acknowledged.add(position)
            else:
                refused[position] = err.str()

        return on_delivery

    for letter, key, value, published in records:
        # An earlier replay's trace (the record failed again) is the tool's, not the record's: one trace, this one.
        own = [(name, raw) for name, raw in published if name not in _REPLAY_HEADERS]
        headers: Headers = [
            *own,
            (REPLAYED_FROM, f"{topic}:{letter.position}".encode()),
            (REPLAYED_SOURCE, letter.source.encode()),
        ]
        producer.produce(
            letter.source_topic,
            key=key,
            value=value,
            headers=headers,
            partition=max(letter.source_partition, -1),  # -1 (a letter that does not say): by key, as before
            on_delivery=outcome(letter.position),
        )
    producer.flush(30)
    if len(acknowledged) < len(records):
        raise ReplayError(_partly(chosen, acknowledged, refused))
    return len(records)


def _partly(chosen: list[DeadLetter], acknowledged: set[str], refused: dict[str, str]) -> str:
    done = [d.position for d in chosen if d.position in acknowledged]
    unknown = [d.position for d in chosen if d.position not in acknowledged and d.position not in refused]
    parts = [f"re-published {len(done)} of {len(chosen)} dead letter(s)" + (f" ({', '.join(done)})" if done else "")]
    parts += [f"{position} refused: {reason}" for position, reason in refused.items()]
    if unknown:
        parts.append(f"not acknowledged within 30 s (may have gone out): {', '.join(unknown)}")
    return "; ".join(parts)
