"""The landing reader and the delivery topic's retention: a stored offset retention already removed is
never answered by a jump to the topic's end (librdkafka's default reset), and what was lost is said.

A fake consumer stands in for Kafka: it records the config, the assignments, and hands out messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import TopicPartition

import sharebus_land.reader as reader_mod
from sharebus_core.settings import BusSettings
from sharebus_land.metrics import LandMetrics

TOPIC = "t.dlv.tax-levy"


@dataclass
class Msg:
    partition_: int
    offset_: int

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def value(self) -> None:
        return None

    def key(self) -> bytes:
        return b"k"


@dataclass
class FakeConsumer:
    """Two partitions; ``low`` is each partition's first retained offset (the broker's low watermark)."""

    low: dict[int, int]
    messages: list[Msg] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    assignments: list[list[tuple[int, int]]] = field(default_factory=list)

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None, 1: None})})

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assignments.append([(tp.partition, tp.offset) for tp in tps])

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = 0, cached: bool = False) -> tuple[int, int]:
        return self.low[tp.partition], 100

    def poll(self, timeout: float) -> Msg | None:
        return self.messages.pop(0) if self.messages else None

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, tp.partition, -1001) for tp in tps]


def reader(
    monkeypatch: pytest.MonkeyPatch, consumer: FakeConsumer, start: dict[tuple[str, int], int]
) -> tuple[reader_mod.DeliveryReader, list[tuple[int, int, int]]]:
    class Identity:
        def __init__(self, settings: BusSettings, acting_for: str) -> None:
            self.access = SimpleNamespace(consumer=self.consumer)

        def consumer(self, config: dict[str, Any]) -> FakeConsumer:
            consumer.config = config
            return consumer

        def client_config(self, config: dict[str, Any]) -> dict[str, Any]:
            return dict(config)

        def raise_if_refused(self) -> None:
            pass

    monkeypatch.setattr(reader_mod, "ClientIdentity", Identity)
    monkeypatch.setattr(reader_mod, "registry_client", lambda *a: None)
    lost: list[tuple[int, int, int]] = []
    made = reader_mod.DeliveryReader(
        BusSettings(namespace="t"), "tax-levy", start, lambda p, first, n: lost.append((p, first, n))
    )
    return made, lost


def test_an_out_of_range_offset_resets_to_the_earliest_not_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka's default reset ("largest") would skip every retained record not yet landed."""
    consumer = FakeConsumer(low={0: 0, 1: 0})
    reader(monkeypatch, consumer, {(TOPIC, 0): 12345})
    assert consumer.config["auto.offset.reset"] == "earliest"


def test_a_stored_offset_below_the_log_start_is_said_counted_and_read_from_the_log_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = FakeConsumer(low={0: 12, 1: 0})
    made, lost = reader(monkeypatch, consumer, {(TOPIC, 0): 5, (TOPIC, 1): 3})
    assert consumer.assignments == [[(0, 5), (1, 3)]]
    with caplog.at_level(logging.ERROR, logger="sharebus.land"):
        assert made.positions()[0] == 12  # --once ends on a partition retention emptied
    assert lost == [(0, 5, 7)]
    assert consumer.assignments[-1] == [(0, 12), (1, 3)]
    assert "[0]: offsets 5 to 11 (7 record(s)) were removed by the topic's retention" in caplog.text
    made.poll(0)
    assert lost == [(0, 5, 7)]  # checked once


def test_a_jump_past_the_expected_offset_while_reading_is_said_when_retention_made_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retention overtaking a reader that lags: librdkafka resets to the earliest offset, a jump the reader
    sees; a jump over offsets still retained (a producer's transaction markers) loses nothing."""
    consumer = FakeConsumer(low={0: 0, 1: 0}, messages=[Msg(0, 3), Msg(1, 7), Msg(0, 10)])
    made, lost = reader(monkeypatch, consumer, {(TOPIC, 0): 3, (TOPIC, 1): 4})
    assert made.poll(0) is not None
    assert made.poll(0) is not None  # 4..6 of partition 1 skipped, but still retained (low 0)
    assert lost == []
    consumer.low[0] = 8  # retention moved partition 0's start past 4
    item = made.poll(0)
    assert item is not None
    assert item.position == (TOPIC, 0, 10)
    assert lost == [(0, 4, 4)]


def test_offsets_lost_to_retention_are_counted_per_partition() -> None:
    metrics = LandMetrics("tax-levy")
    metrics.lost_to_retention(2, 5, 7)
    metrics.lost_to_retention(2, 40, 1)
    assert metrics.registry.get_sample_value("sharebus_land_lost_to_retention_total", {"partition": "2"}) == 8
