"""The SDK's batch assembly and offset book: whole batches once, offsets never past an unfinished one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from confluent_kafka.serialization import SerializationContext

from sharebus_core import headers as h
from sharebus_sdk.batches import Batch, BatchAssembler, BatchInfo
from sharebus_sdk.offsets import OffsetBook
from tests.unit.delivery_fakes import Message
from tests.unit.delivery_fakes import subscriber as fake_subscriber

START = dt.datetime(2026, 11, 22, 2, tzinfo=dt.UTC)
TOPIC = "unit.dlv.hrss-si"


def info(seq: int | None, count: int = 3, batch: str = "c@w1") -> BatchInfo:
    return BatchInfo(batch, START, START + dt.timedelta(days=1), count, seq)


def test_a_batch_is_whole_when_the_marker_and_every_record_arrived_in_any_order() -> None:
    assembler = BatchAssembler()
    assert assembler.add(info(2), ("t", 1, 10), "r2", "c", "AMR", "tax") is None
    assert assembler.add(info(None), ("t", 0, 5), None, "c", "AMR", "tax") is None  # marker before a record
    assert assembler.add(info(0), ("t", 2, 7), "r0", "c", "AMR", "tax") is None
    assert assembler.add(info(0), ("t", 2, 8), "r0 again", "c", "AMR", "tax") is None  # a repeat fills no slot
    whole = assembler.add(info(1), ("t", 0, 6), "r1", "c", "AMR", "tax")
    assert whole is not None
    batch, positions = whole
    assert batch.records == ("r0", "r1", "r2")
    assert (batch.batch_id, batch.data_class, batch.consumer) == ("c@w1", "c", "tax")
    assert len(positions) == 5
    assert assembler.is_completed("c@w1")
    assert assembler.pending == 0


def test_an_empty_batch_is_whole_at_its_marker() -> None:
    assembler = BatchAssembler()
    whole = assembler.add(info(None, count=0), ("t", 0, 1), None, "c", "AMR", "tax")
    assert whole is not None
    assert whole[0].records == ()


def test_batch_info_is_read_from_headers() -> None:
    headers = {
        h.BATCH_ID: b"c@w",
        h.BATCH_START: START.isoformat().encode(),
        h.BATCH_END_TIME: (START + dt.timedelta(hours=1)).isoformat().encode(),
        h.BATCH_COUNT: b"4",
        h.BATCH_SEQ: b"2",
    }
    parsed = BatchInfo.from_headers(headers)
    assert parsed == BatchInfo("c@w", START, START + dt.timedelta(hours=1), 4, 2)
    marker = BatchInfo.from_headers({**headers, h.BATCH_END: b"1"})
    assert marker is not None
    assert marker.seq is None
    assert BatchInfo.from_headers({}) is None


def test_offsets_are_stored_only_up_to_the_oldest_unfinished_message() -> None:
    book = OffsetBook()
    for offset in range(5):
        book.consumed(("t", 0, offset))
    book.done([("t", 0, 0), ("t", 0, 2), ("t", 0, 3)])  # 1 and 4 still open (say, parts of a batch)
    stored = book.to_store()
    assert [(tp.topic, tp.partition, tp.offset) for tp in stored] == [("t", 0, 1)]
    assert book.to_store() == []  # unchanged: nothing to store again
    book.done([("t", 0, 1), ("t", 0, 4)])
    assert [tp.offset for tp in book.to_store()] == [5]


def batch_messages(start: int, window: str, record_ids: list[str]) -> list[Message]:
    """One released window: its records (value: the record id) and the end marker."""
    common = {
        h.BATCH_ID: f"c@{window}".encode(),
        h.BATCH_START: START.isoformat().encode(),
        h.BATCH_END_TIME: (START + dt.timedelta(days=1)).isoformat().encode(),
        h.BATCH_COUNT: str(len(record_ids)).encode(),
        h.DATA_CLASS: b"c",
        h.PROVIDER: b"AMR",
    }
    records = [
        Message(TOPIC, start + seq, {**common, h.BATCH_SEQ: str(seq).encode(), h.RECORD_ID: rid.encode()}, rid.encode())
        for seq, rid in enumerate(record_ids)
    ]
    return [*records, Message(TOPIC, start + len(record_ids), {**common, h.BATCH_END: b"1"}, None)]


def record_id_value(value: bytes | None, context: SerializationContext) -> Any:
    """A record whose value is its id (not Confluent-framed: the subject check leaves it, never asks a registry)."""
    assert value is not None
    return {"id": value.decode()}


def test_a_record_released_again_in_a_later_batch_is_not_handed_out_twice() -> None:
    # A router that crashed after holding a record and before committing holds it again; past the
    # window's end marker, the copy goes out with the next window: same record id, another batch.
    released = [*batch_messages(0, "w1", ["r1", "r2"]), *batch_messages(3, "w2", ["r2", "r3"])]
    subscriber = fake_subscriber("hrss-si", released, record_id_value, namespace="unit")

    first, second = subscriber.poll(0), subscriber.poll(0)
    assert isinstance(first, Batch)
    assert isinstance(second, Batch)
    assert [r.record_id for r in first.records] == ["r1", "r2"]
    assert [r.record_id for r in second.records] == ["r3"]
    assert second.repeats == (0,)  # its index in the batch, as skipped ones are named
    assert subscriber.duplicates == 1
