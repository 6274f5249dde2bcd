"""``sharebus dlq replay`` on a real broker: a record named by two letters goes back once, across runs.

Two runs that picked the two letters of one source record (``--reason`` by ``--reason``) each
re-published it: the second run recognised copies by the letter they named, not by their record.
"""

from __future__ import annotations

import pytest

from sharebus_cli.main import main as cli
from sharebus_core import headers as h
from sharebus_core.headers import header_map
from sharebus_core.topic_reader import read_topic
from sharebus_ops.dlq import REPLAYED_SOURCE, DeadLetter, list_dead_letters
from sharebus_router.dead_letters import dead_letter_headers
from tests.integration.conftest import Bus
from tests.support.kafka import eventually

ENTERPRISE = "301001001/000001"


def letters_of(bus: Bus, key: bytes) -> list[DeadLetter]:
    return [d for d in list_dead_letters(bus.access, bus.topics.dead_letter) if d.key == key]


def test_a_record_dead_lettered_twice_is_replayed_once_whatever_reason_picks_it(
    bus: Bus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = bus.topics.source(ENTERPRISE)
    producer = bus.access.producer()
    # Not a framed Avro record: the router dead-letters it.
    producer.produce(source, key=b"twice", value=b"not avro", headers=[(h.DATA_CLASS, ENTERPRISE.encode())])
    assert producer.flush(30) == 0
    [first] = eventually(lambda: letters_of(bus, b"twice"), lambda found: len(found) >= 1)
    # The same record dead-lettered again for another reason (as a retried periodic release may).
    again: list[tuple[str, str | bytes | None]] = [
        *dead_letter_headers(
            list(first.original_headers),
            "too_large",
            "planted",
            first.source_topic,
            first.source_partition,
            first.source_offset,
            ENTERPRISE,
        )
    ]
    producer.produce(bus.topics.dead_letter, key=first.key, value=first.value, headers=again)
    assert producer.flush(30) == 0
    eventually(lambda: letters_of(bus, b"twice"), lambda found: len(found) >= 2)

    bus.use_in_env(monkeypatch)
    assert cli(["dlq", "replay", "--all", "--reason", first.reason]) == 0
    assert "re-published 1 dead letter(s)" in capsys.readouterr().out
    assert cli(["dlq", "replay", "--all", "--reason", "too_large"]) == 0
    said = capsys.readouterr().out
    assert "re-published 0 dead letter(s)" in said
    assert "whose record was replayed already" in said

    record = f"{first.source_topic}:{first.source_partition}:{first.source_offset}".encode()
    copies = [m for m in read_topic(bus.access, source) if header_map(m.headers()).get(REPLAYED_SOURCE) == record]
    assert len(copies) == 1
    # In the record's own partition, after it: where the next replay looks for it.
    [copy] = copies
    assert copy.partition() == first.source_partition
    assert (copy.offset() or 0) > first.source_offset
