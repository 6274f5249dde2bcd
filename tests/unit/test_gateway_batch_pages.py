"""GET /v1/systems/{system}/batches reads one bounded page of the delivery topic, never the whole topic:
at most ``max_records`` records and ``max_bytes`` bytes, the newest by default, and says where it stopped
(``next``, the next page's ``?from=``) and whether it stopped at a limit (``more``)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharebus_core import headers as h
from sharebus_core.kafka import KafkaAccess
from sharebus_gateway import batches_api
from sharebus_gateway import positions as pos
from sharebus_gateway.auth import Caller, caller
from sharebus_gateway.batches import BatchPage, PageLimits, read_batches

TOPIC = "unit.dlv.tax-levy"


def batch_record(batch_id: str, seq: int | None, count: int, partition: int, offset: int) -> Message:
    headers = {
        h.BATCH_ID: batch_id,
        h.CONSUMER: "tax-levy",
        h.DATA_CLASS: "306001001/000001",
        h.BATCH_COUNT: str(count),
        h.BATCH_START: "2026-12-01T00:00:00+00:00",
        h.BATCH_END_TIME: "2026-12-01T01:00:00+00:00",
    }
    if seq is None:
        headers[h.BATCH_END] = "1"
    else:
        headers[h.BATCH_SEQ] = str(seq)
        headers[h.RECORD_ID] = f"{batch_id}-{seq}"
    value = None if seq is None else b"x" * 100
    return Message(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        value=value,
        headers=[(k, v.encode()) for k, v in headers.items()],
    )


class DeliveryConsumer:
    """Two partitions; batch b-N's records on partition N % 2, each batch 3 records and its end marker."""

    def __init__(self, partitions: dict[int, list[Message]]) -> None:
        self.partitions = partitions
        self.cursor: dict[int, int] = {}
        self.eof_sent: set[int] = set()
        self.handed = 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions=dict.fromkeys(self.partitions), error=None)})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.partitions[tp.partition])

    def assign(self, tps: list[TopicPartition]) -> None:
        self.cursor = {tp.partition: tp.offset for tp in tps}

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        out: list[Message] = []
        for partition, at in sorted(self.cursor.items()):
            records = self.partitions[partition]
            while len(out) < num_messages and at < len(records):
                out.append(records[at])
                at += 1
            self.cursor[partition] = at
            if at >= len(records) and partition not in self.eof_sent and len(out) < num_messages:
                self.eof_sent.add(partition)
                eof = KafkaError(KafkaError._PARTITION_EOF)
                out.append(Message(topic=TOPIC, partition=partition, offset=at, error=eof))
        self.handed += sum(1 for m in out if m.error() is None)
        return out

    def close(self) -> None:
        return None


def topic_of(batches: int) -> dict[int, list[Message]]:
    partitions: dict[int, list[Message]] = {0: [], 1: []}
    for n in range(batches):
        records = partitions[n % 2]
        for seq in (0, 1, 2, None):
            records.append(batch_record(f"b-{n}", seq, 3, n % 2, len(records)))
    return partitions


@pytest.fixture
def consumers(monkeypatch: pytest.MonkeyPatch) -> list[DeliveryConsumer]:
    made: list[DeliveryConsumer] = []

    def consumer(_self: KafkaAccess, _config: object) -> DeliveryConsumer:
        made.append(DeliveryConsumer(topic_of(10)))  # 40 records, 20 a partition
        return made[-1]

    monkeypatch.setattr(KafkaAccess, "consumer", consumer)
    return made


def page(start: str | None, max_records: int = 1000, max_bytes: int = 1 << 20) -> BatchPage:
    access = KafkaAccess(bootstrap="unused:9092")
    return read_batches(access, TOPIC, "tax-levy", start, PageLimits(max_records, max_bytes, timeout_s=1))


def test_a_page_reads_at_most_its_records_and_the_pages_together_hold_every_batch(
    consumers: list[DeliveryConsumer],
) -> None:
    """Before, one request read the system's whole delivery topic into memory."""
    start: str | None = pos.EARLIEST
    complete: set[str] = set()
    pages = 0
    while True:
        found = page(start, max_records=8)
        assert consumers[-1].handed <= 8
        complete |= {b for b, batch in found.batches.items() if batch.complete}
        pages += 1
        if not found.more:
            break
        start = pos.encode(found.next)
    assert found.next == {0: 20, 1: 20}
    assert pages == 5
    # A batch cut by a page's end is whole in the next page that starts at its first record: from the
    # page before, each batch is complete in some page (pages here fall on batch boundaries).
    assert complete == {f"b-{n}" for n in range(10)}


def test_by_default_a_page_is_the_newest_records(consumers: list[DeliveryConsumer]) -> None:
    found = page(None, max_records=8)
    assert found.next == {0: 20, 1: 20}
    assert not found.more
    assert sorted(found.batches) == ["b-8", "b-9"]
    assert all(batch.complete for batch in found.batches.values())


def test_a_page_stops_at_its_bytes(consumers: list[DeliveryConsumer]) -> None:
    found = page(pos.EARLIEST, max_records=1000, max_bytes=1024)
    # 100-byte values: the page ends with the record that takes it to 1 KiB (the 11th, at offset 13 of
    # partition 0, which the fake hands out first), well before the topic's 3 KB.
    assert found.more
    assert found.next == {0: 14, 1: 0}


def test_a_position_past_the_end_is_a_bad_position(consumers: list[DeliveryConsumer]) -> None:
    with pytest.raises(pos.BadPosition):
        page("0:21")


def batches_client(pages_at_once: int) -> tuple[TestClient, threading.BoundedSemaphore]:
    app = FastAPI()
    app.include_router(batches_api.router)
    pages = threading.BoundedSemaphore(pages_at_once)
    app.state.gateway = SimpleNamespace(
        settings=SimpleNamespace(
            kafka=KafkaAccess(bootstrap="unused:9092"), batch_page_max_records=8, batch_page_max_bytes=1 << 20
        ),
        topics=SimpleNamespace(delivery=lambda system: f"unit.dlv.{system}"),
        batch_pages=pages,
    )
    app.dependency_overrides[caller] = lambda: Caller("tax-levy", "TAX", "k-tax")
    return TestClient(app), pages


def test_the_listing_says_where_its_page_ended_and_a_bad_position_is_400(consumers: list[DeliveryConsumer]) -> None:
    http, _pages = batches_client(4)
    listed = http.get("/v1/systems/tax-levy/batches")
    assert listed.status_code == 200, listed.text
    assert [b["batch_id"] for b in listed.json()] == ["b-8", "b-9"]
    assert (listed.headers["sharebus-next"], listed.headers["sharebus-more"]) == ("0:20,1:20", "false")
    first = http.get("/v1/systems/tax-levy/batches", params={"from": "earliest"})
    assert (first.headers["sharebus-next"], first.headers["sharebus-more"]) == ("0:8,1:0", "true")
    assert http.get("/v1/systems/tax-levy/batches", params={"from": "0:\u00b2"}).status_code == 400


def test_pages_beyond_the_gateways_bound_are_503_not_queued(consumers: list[DeliveryConsumer]) -> None:
    http, pages = batches_client(1)
    assert pages.acquire(blocking=False)  # one page being read now
    busy = http.get("/v1/systems/tax-levy/batches")
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert consumers == []
    pages.release()
    assert http.get("/v1/systems/tax-levy/batches").status_code == 200
