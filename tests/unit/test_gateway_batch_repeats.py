"""Batch downloads drop repeats: a seq delivered twice, and a record id the batch already holds."""

from __future__ import annotations

from typing import cast

from confluent_kafka import Message

from sharebus_core import headers as h
from sharebus_gateway.batches import collect_batches


class _Msg:
    """What ``collect_batches`` reads of a Kafka message: its headers and value."""

    def __init__(self, headers: dict[str, str], value: bytes | None = b"v") -> None:
        self._headers = [(k, v.encode()) for k, v in headers.items()]
        self._value = value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def value(self) -> bytes | None:
        return self._value


def _part(seq: int | None, record_id: str | None, count: int = 4) -> Message:
    headers = {
        h.BATCH_ID: "b-1",
        h.CONSUMER: "tax-levy",
        h.DATA_CLASS: "306001001/000001",
        h.BATCH_COUNT: str(count),
        h.BATCH_START: "2026-12-01T00:00:00+00:00",
        h.BATCH_END_TIME: "2026-12-01T01:00:00+00:00",
    }
    if seq is None:
        return cast(Message, _Msg({**headers, h.BATCH_END: "1"}, None))
    headers[h.BATCH_SEQ] = str(seq)
    if record_id is not None:
        headers[h.RECORD_ID] = record_id
    return cast(Message, _Msg(headers))


def test_a_record_id_held_twice_in_a_batch_is_served_once_and_the_batch_completes() -> None:
    # The router held r-2 twice (a crash before its commit), so the window's 4 seqs hold 3 records.
    messages = [_part(0, "r-0"), _part(1, "r-1"), _part(2, "r-2"), _part(3, "r-2"), _part(None, None)]
    batch = collect_batches(messages, "tax-levy")["b-1"]
    assert sorted(batch.records) == [0, 1, 2]
    assert batch.duplicates == {3}
    assert batch.complete
    assert batch.summary()["duplicates"] == 1


def test_a_seq_delivered_twice_is_kept_once_and_records_without_ids_are_kept() -> None:
    messages = [_part(0, None), _part(0, None), _part(1, None), _part(None, None)]
    batch = collect_batches(messages, "tax-levy")["b-1"]
    assert sorted(batch.records) == [0, 1]
    assert batch.duplicates == set()
    assert not batch.complete  # 2 of 4
