"""``sharebus dlq replay`` keeps each key's original order, sends a source record once, and resumes.

The replay used to send letters in the dead-letter topic's order (partition by partition, and a periodic
record is dead-lettered at its window's release, after later records of its key), sent every repeat letter
of one record, and sent again, on a second run, what an interrupted run had already sent.
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any, cast

import pytest
from confluent_kafka import Message

from sharebus_cli import dlq_cmd
from sharebus_core import headers as h
from sharebus_core.settings import BusSettings
from sharebus_ops.dlq import REPLAYED_FROM, REPLAYED_SOURCE, DeadLetter, _dead_letter
from sharebus_router.dead_letters import DeadLetterReason, dead_letter_headers
from tests.unit.test_dlq_replay import Access

SOURCE = "unit.src.301001005.000001"
DLQ = "unit.dlq"


def letter(
    dlq_partition: int,
    dlq_offset: int,
    source_offset: int,
    key: bytes = b"U1",
    reason: str = DeadLetterReason.UNKNOWN_SCHEMA_ID,
) -> DeadLetter:
    published = [(h.RECORD_ID, f"r{source_offset}".encode())]
    headers = dead_letter_headers(published, reason, "id 9", SOURCE, 0, source_offset, "301001005/000001")
    value = f"v{source_offset}".encode()
    msg = Message(topic=DLQ, partition=dlq_partition, offset=dlq_offset, key=key, value=value, headers=list(headers))
    return _dead_letter(msg)


def replay(
    monkeypatch: pytest.MonkeyPatch,
    letters: list[DeadLetter],
    source: list[Message],
    *extra: str,
    produced: list[Message] | None = None,
    asked: list[dlq_cmd.Ranges] | None = None,
) -> tuple[list[bytes | None], str]:
    """Runs ``sharebus dlq replay --all`` (and ``extra``) over ``letters`` with ``source`` as the source topic;
    returns the values published and what the command said. ``produced`` gets the copies as the source topic
    then holds them (at offsets from 100), ``asked`` the ranges of the source topic the command read."""
    access = Access()
    monkeypatch.setattr(dlq_cmd, "list_dead_letters", lambda _access, _topic: letters)

    def copies(_access: object, ranges: dlq_cmd.Ranges) -> list[Message]:
        if asked is not None:
            asked.append(dict(ranges))
        return [m for m in source if (m.offset() or 0) >= ranges.get((m.topic() or "", m.partition() or 0), 1 << 62)]

    monkeypatch.setattr(dlq_cmd, "source_copies", copies)
    parser = argparse.ArgumentParser()
    dlq_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dlq", "replay", "--all", *extra])
    settings = cast(BusSettings, SimpleNamespace(namespace="unit", kafka=access))
    said = dlq_cmd.run(args, settings)
    if produced is not None:
        for n, (topic, key, value, headers) in enumerate(access.made.produced):
            partition = access.made.partitions[n]
            produced.append(
                Message(topic=topic, partition=partition, offset=100 + n, key=key, value=value, headers=headers)
            )
    return [value for _topic, _key, value, _headers in access.made.produced], said


def copy_of(position: str, value: bytes, offset: int) -> Message:
    """A copy an earlier replay published to the source topic."""
    headers: list[tuple[str, Any]] = [(REPLAYED_FROM, f"{DLQ}:{position}".encode())]
    return Message(topic=SOURCE, partition=0, offset=offset, key=b"U1", value=value, headers=headers)


def test_letters_go_back_in_their_records_order_not_the_dead_letter_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    # Offset 9 was dead-lettered live; offset 5, held for its window, only when the window was released.
    # Offset 2 (another key) went to another partition of the dead-letter topic.
    letters = [letter(0, 0, 9), letter(0, 1, 5), letter(1, 0, 2, key=b"U2"), letter(2, 0, 7)]
    values, _said = replay(monkeypatch, letters, [])
    assert values == [b"v2", b"v5", b"v7", b"v9"]


def test_a_record_dead_lettered_twice_goes_back_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A retried release (or a crash before the commit) dead-letters the same source record again.
    values, _said = replay(monkeypatch, [letter(0, 0, 5), letter(0, 1, 5), letter(0, 2, 6)], [])
    assert values == [b"v5", b"v6"]


def test_an_interrupted_replay_run_again_sends_only_what_did_not_go_out(monkeypatch: pytest.MonkeyPatch) -> None:
    letters = [letter(0, 0, 5), letter(0, 1, 6), letter(0, 2, 7)]
    # The first run got the copies of offsets 5 and 6 out before it was stopped.
    source = [copy_of("0:0", b"v5", 100), copy_of("0:1", b"v6", 101)]
    values, said = replay(monkeypatch, letters, source)
    assert values == [b"v7"]
    assert "re-published 1 dead letter(s)" in said
    assert "skipped 2 whose record was replayed already (0:0, 0:1" in said


def test_again_replays_letters_whose_copy_is_already_there(monkeypatch: pytest.MonkeyPatch) -> None:
    values, _said = replay(monkeypatch, [letter(0, 0, 5), letter(0, 1, 6)], [copy_of("0:0", b"v5", 100)], "--again")
    assert values == [b"v5", b"v6"]


def test_a_letter_sent_after_a_later_one_of_its_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kafka refused offset 5's copy while offset 6's went out: the key's order is already lost, and said.
    values, said = replay(monkeypatch, [letter(0, 0, 5), letter(0, 1, 6)], [copy_of("0:1", b"v6", 100)])
    assert values == [b"v5"]
    assert "sent after a later letter of their key had been: 0:0" in said


def test_letters_of_one_record_picked_by_two_reasons_send_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The router dead-lettered offset 5 twice, for two reasons (a periodic release retried under new rules).
    letters = [letter(0, 0, 5, reason="unknown_schema_id"), letter(1, 0, 5, reason="too_large")]
    source: list[Message] = []
    first, _said = replay(monkeypatch, letters, source, "--reason", "unknown_schema_id", produced=source)
    assert first == [b"v5"]
    second, said = replay(monkeypatch, letters, source, "--reason", "too_large")
    assert second == []
    assert "skipped 1 whose record was replayed already (1:0" in said


def test_a_copy_that_names_only_its_letter_still_marks_its_record_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A copy made before copies named their record: its letter (0:0) names the record, offset 5.
    letters = [letter(0, 0, 5, reason="unknown_schema_id"), letter(1, 0, 5, reason="too_large")]
    values, said = replay(monkeypatch, letters, [copy_of("0:0", b"v5", 100)], "--reason", "too_large")
    assert values == []
    assert "skipped 1 whose record was replayed already (1:0" in said


def test_a_copy_goes_to_its_records_partition_naming_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    source: list[Message] = []
    replay(monkeypatch, [letter(0, 0, 5)], [], produced=source)
    [copy] = source
    assert copy.partition() == 0
    assert dict(copy.headers() or [])[REPLAYED_SOURCE] == f"{SOURCE}:0:5".encode()


def test_the_source_topic_is_read_only_from_the_first_chosen_record_on(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dlq_cmd.Ranges] = []
    replay(monkeypatch, [letter(0, 0, 9), letter(0, 1, 5), letter(1, 0, 7)], [], asked=asked)
    # A copy goes to its record's partition after the record: nothing before offset 6 can be one.
    assert asked == [{(SOURCE, 0): 6}]


OTHER = "unit.src.301001006.000001"


def forged(offset: int, *headers: tuple[str, bytes], topic: str = SOURCE, partition: int = 0) -> Message:
    """A record a provider published to a source topic, carrying replay headers it chose."""
    return Message(topic=topic, partition=partition, offset=offset, key=b"z", value=b"junk", headers=list(headers))


def other_letter(dlq_partition: int, dlq_offset: int, source_offset: int, partition: int = 0) -> DeadLetter:
    """A letter of another class's record (another provider's source topic)."""
    headers = dead_letter_headers([], DeadLetterReason.UNKNOWN_SCHEMA_ID, "id 9", OTHER, partition, source_offset, "x")
    msg = Message(topic=DLQ, partition=dlq_partition, offset=dlq_offset, key=b"U9", value=b"o", headers=list(headers))
    return _dead_letter(msg)


def test_a_copy_counts_only_for_a_record_before_it_in_its_own_topic_and_partition() -> None:
    mine, other = letter(0, 0, 10), other_letter(1, 0, 17)
    letters = {d.position: d for d in (mine, other)}

    def names(msg: Message) -> set[str]:
        return dlq_cmd.copy_names(msg, DLQ, letters)

    # Another class's record, named from this topic: not a copy (a provider cannot skip others' letters).
    assert names(forged(11, (REPLAYED_SOURCE, f"{OTHER}:0:17".encode()))) == set()
    # Another partition, a later offset, the same offset, or not a name at all: not a copy.
    assert names(forged(11, (REPLAYED_SOURCE, f"{SOURCE}:1:5".encode()))) == set()
    assert names(forged(11, (REPLAYED_SOURCE, f"{SOURCE}:0:12".encode()))) == set()
    assert names(forged(10, (REPLAYED_SOURCE, f"{SOURCE}:0:10".encode()))) == set()
    assert names(forged(11, (REPLAYED_SOURCE, b"nonsense"))) == set()
    # An older copy's header names a letter: only a letter of this topic's record counts.
    assert names(forged(11, (REPLAYED_FROM, f"{DLQ}:{other.position}".encode()))) == set()
    assert names(forged(11, (REPLAYED_FROM, f"{DLQ}:{mine.position}".encode()))) == {mine.source}
    assert names(forged(11, (REPLAYED_SOURCE, mine.source.encode()))) == {mine.source}


def test_a_provider_cannot_make_another_class_s_letters_be_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reviewer's forgery: a record in this class's topic names another class's record and letter.
    mine, other = letter(0, 5, 10), other_letter(1, 7, 17)
    source = [
        forged(11, (REPLAYED_SOURCE, f"{OTHER}:0:17".encode()), (REPLAYED_FROM, f"{DLQ}:1:7".encode())),
        forged(3, (REPLAYED_SOURCE, f"{OTHER}:0:17".encode()), topic=OTHER),  # before the record: not a copy
    ]
    values, said = replay(monkeypatch, [mine, other], source)
    assert sorted(v or b"" for v in values) == [b"o", b"v10"]
    assert "skipped" not in said


class Unreadable(Message):
    """A source record whose header name is not UTF-8: confluent-kafka raises reading its headers."""

    def headers(self) -> None:
        raise SystemError("<method 'headers'> returned a result with an exception set")


def test_a_source_record_whose_headers_cannot_be_read_is_no_copy_and_stops_nothing() -> None:
    mine = letter(0, 0, 10)
    record = Unreadable(topic=SOURCE, partition=0, offset=11, key=b"z", value=b"junk")
    assert dlq_cmd.copy_names(record, DLQ, {mine.position: mine}) == set()
