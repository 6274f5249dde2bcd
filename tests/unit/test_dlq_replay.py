"""Replaying dead letters without Kafka: what goes back to the source topic is the record as it was published."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, Message

from sharebus_core import headers as h
from sharebus_core.kafka import KafkaAccess
from sharebus_ops.dlq import REPLAYED_FROM, REPLAYED_SOURCE, DeadLetter, ReplayError, _dead_letter, chosen, replay
from sharebus_router.dead_letters import DLQ_OMITTED, DeadLetterReason, bounded, dead_letter_headers

SOURCE = "unit.src.301001001.000001"
DLQ = "unit.dlq"
LIMIT = 1_000
PUBLISHED: list[tuple[str, str | bytes | None]] = [(h.DATA_CLASS, b"301001001/000001"), (h.RECORD_ID, b"r7")]


class Producer:
    """Takes what replay produces; every message acknowledged (its callback called by flush, as Kafka's is)."""

    def __init__(self) -> None:
        self.produced: list[tuple[str, bytes | None, bytes | None, list[tuple[str, Any]]]] = []
        self.partitions: list[int] = []
        self.callbacks: list[tuple[bytes | None, Any]] = []

    def produce(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any, on_delivery: Any, partition: int = -1
    ) -> None:
        self.produced.append((topic, key, value, list(headers)))
        self.partitions.append(partition)
        self.callbacks.append((key, on_delivery))

    def error_for(self, key: bytes | None) -> KafkaError | None:
        return None

    def flush(self, timeout: float) -> int:
        for key, on_delivery in self.callbacks:
            on_delivery(self.error_for(key), None)
        return 0


class Access:
    def __init__(self) -> None:
        self.made = Producer()

    def producer(self, config: dict[str, Any]) -> Producer:
        return self.made


def letter(value: bytes) -> DeadLetter:
    """The dead letter the router makes of ``value`` published at offset 7 (``bounded`` to ``LIMIT``)."""
    published = [(name, value) for name, value in PUBLISHED if isinstance(value, bytes)]
    headers = dead_letter_headers(published, DeadLetterReason.TOO_LARGE, "too large", SOURCE, 0, 7, "301001001/000001")
    key, kept, headers = bounded(b"U1", value, headers, LIMIT)
    return _dead_letter(Message(topic=DLQ, partition=0, offset=3, key=key, value=kept, headers=list(headers)))


def source_record(access: KafkaAccess, found: DeadLetter) -> Message | None:
    """The source topic as it still holds the letter's record."""
    assert (found.source_topic, found.source_partition, found.source_offset) == (SOURCE, 0, 7)
    return Message(topic=SOURCE, partition=0, offset=7, key=b"U1", value=b"v" * 2 * LIMIT, headers=PUBLISHED)


def test_a_letter_kept_whole_is_replayed_as_it_is() -> None:
    access = Access()
    assert replay(cast(KafkaAccess, access), DLQ, [letter(b"small")]) == 1
    [(topic, key, value, headers)] = access.made.produced
    assert (topic, key, value) == (SOURCE, b"U1", b"small")
    assert headers[:2] == PUBLISHED


def test_a_letter_that_left_out_its_value_replays_the_record_from_its_source_topic() -> None:
    oversized = letter(b"v" * 2 * LIMIT)
    assert oversized.value is None
    assert oversized.omitted == "value"
    access = Access()
    assert replay(cast(KafkaAccess, access), DLQ, [oversized], original=source_record) == 1
    [(topic, key, value, headers)] = access.made.produced
    assert (topic, key, value) == (SOURCE, b"U1", b"v" * 2 * LIMIT)
    assert headers[:2] == PUBLISHED
    assert DLQ_OMITTED not in dict(headers)


def test_a_letter_whose_record_is_gone_is_refused_and_nothing_is_replayed() -> None:
    access = Access()
    with pytest.raises(ReplayError, match="no longer at"):
        replay(
            cast(KafkaAccess, access),
            DLQ,
            [letter(b"small"), letter(b"v" * 2 * LIMIT)],
            original=lambda _access, _letter: None,
        )
    assert access.made.produced == []


def test_a_header_the_record_carried_twice_is_replayed_twice_in_its_place() -> None:
    """Kafka headers are a list: a record's repeated header (two tags, say) is part of the record as published."""
    published: list[tuple[str, bytes | None]] = [("x-tag", b"a"), (h.RECORD_ID, b"r7"), ("x-tag", b"b")]
    headers = dead_letter_headers(published, DeadLetterReason.UNKNOWN_SCHEMA_ID, "id 9", SOURCE, 0, 7, "")
    found = _dead_letter(Message(topic=DLQ, partition=0, offset=3, key=b"U1", value=b"v", headers=list(headers)))
    access = Access()
    assert replay(cast(KafkaAccess, access), DLQ, [found]) == 1
    [(_topic, _key, _value, replayed)] = access.made.produced
    assert replayed[:3] == published


def test_a_replay_the_bus_refuses_is_an_error_and_an_exit_code_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sharebus_cli import dlq_cmd
    from sharebus_cli.main import main

    def refused(*_args: object) -> int:
        raise ReplayError("dead letter 0:3 left out its value, and its record is no longer at unit.src[0]@7")

    monkeypatch.setattr(dlq_cmd, "list_dead_letters", lambda *_args: [letter(b"v" * 2 * LIMIT)])
    monkeypatch.setattr(dlq_cmd, "replay", refused)
    monkeypatch.setattr(dlq_cmd, "source_copies", lambda *_args: [])  # no copy of it in its source topic yet
    assert main(["dlq", "replay", "0:3"]) == 6
    assert "no longer at unit.src[0]@7" in capsys.readouterr().err


def test_a_reason_chooses_the_letters_of_that_reason_also_where_the_header_names_a_rule() -> None:
    """A quality rejection's reason header is ``quality:<field>:<kind>``; ``--reason quality`` asks for all of them."""
    published = [(h.RECORD_ID, b"r8")]
    rejected = dead_letter_headers(published, "quality:amount:range", "amount < 0", SOURCE, 0, 8, "301001001/000001")
    letters = [
        letter(b"small"),  # too_large
        _dead_letter(Message(topic=DLQ, partition=0, offset=4, key=b"U2", value=b"v", headers=list(rejected))),
    ]
    assert [d.position for d in chosen(letters, "quality", None)] == ["0:4"]
    assert [d.position for d in chosen(letters, "quality:amount:range", None)] == ["0:4"]
    assert [d.position for d in chosen(letters, "quality:amount", None)] == []
    assert [d.position for d in chosen(letters, "too_large", "301001001/000001")] == ["0:3"]
    assert [d.position for d in chosen(letters, None, "301001002/000001")] == []


def test_a_letter_of_a_replayed_record_is_replayed_with_one_trace_its_own() -> None:
    """A replay that failed again (replayed before the fix) carries the first replay's trace; the next replay
    names its own letter once, not both as if the first trace were the record's own header."""
    published: list[tuple[str, bytes | None]] = [
        (h.RECORD_ID, b"r7"),
        (REPLAYED_FROM, b"unit.dlq:0:1"),
        (REPLAYED_SOURCE, f"{SOURCE}:0:7".encode()),
    ]
    headers = dead_letter_headers(published, DeadLetterReason.UNKNOWN_SCHEMA_ID, "id 9", SOURCE, 0, 9, "")
    found = _dead_letter(Message(topic=DLQ, partition=0, offset=3, key=b"U1", value=b"v", headers=list(headers)))
    access = Access()
    assert replay(cast(KafkaAccess, access), DLQ, [found]) == 1
    [(_topic, _key, _value, replayed)] = access.made.produced
    assert replayed == [
        (h.RECORD_ID, b"r7"),
        (REPLAYED_FROM, b"unit.dlq:0:3"),
        (REPLAYED_SOURCE, f"{SOURCE}:0:9".encode()),
    ]


class Refusing(Producer):
    """Acknowledges every copy but the one with ``refused_key``, which Kafka refuses."""

    def __init__(self, refused_key: bytes) -> None:
        super().__init__()
        self.refused_key = refused_key

    def error_for(self, key: bytes | None) -> KafkaError | None:
        return KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED) if key == self.refused_key else None


def test_a_replay_kafka_refuses_in_part_says_which_letters_went_out_and_which_did_not() -> None:
    """Replaying the whole selection again would publish the acknowledged ones twice: the error names them."""
    first = _dead_letter(
        Message(topic=DLQ, partition=0, offset=3, key=b"U1", value=b"v", headers=list(letter_headers()))
    )
    second = _dead_letter(
        Message(topic=DLQ, partition=0, offset=4, key=b"U2", value=b"v", headers=list(letter_headers()))
    )
    access = Access()
    access.made = Refusing(b"U2")
    with pytest.raises(ReplayError) as refused:
        replay(cast(KafkaAccess, access), DLQ, [first, second])
    said = str(refused.value)
    assert "re-published 1 of 2 dead letter(s) (0:3)" in said
    assert "0:4 refused:" in said


def letter_headers() -> list[tuple[str, bytes]]:
    return dead_letter_headers([(h.RECORD_ID, b"r9")], DeadLetterReason.UNKNOWN_SCHEMA_ID, "id 9", SOURCE, 0, 9, "")


def test_a_listing_whose_filters_match_nothing_does_not_say_the_topic_is_empty(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sharebus_cli import dlq_cmd
    from sharebus_cli.main import main

    monkeypatch.setattr(dlq_cmd, "list_dead_letters", lambda *_args: [letter(b"small")])
    assert main(["dlq", "list", "--class", "301001002/000001"]) == 0
    assert "none of the 1 dead letter(s) matches --reason/--class" in capsys.readouterr().out
    monkeypatch.setattr(dlq_cmd, "list_dead_letters", lambda *_args: [])
    assert main(["dlq", "list"]) == 0
    assert "the dead-letter topic is empty" in capsys.readouterr().out
