"""Where the report starts reading each audit partition (no Kafka: the consumer is faked)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError

from sharebus_core.topic_reader import TopicReadError
from sharebus_report.sources import SEEK_MARGIN, _start_offsets

SINCE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@dataclass
class _Found:
    """What ``offsets_for_times`` answers for one partition."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None = None


class _Consumer:
    def __init__(self, answers: list[_Found]) -> None:
        self.answers = answers
        self.asked: list[tuple[int, int]] = []

    def list_topics(self, topic: str, timeout: float) -> Any:
        partitions = {found.partition: None for found in self.answers}
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=partitions)})

    def offsets_for_times(self, partitions: list[Any], timeout: float) -> list[_Found]:
        self.asked = [(tp.partition, tp.offset) for tp in partitions]
        return self.answers


def test_each_partition_starts_at_the_first_record_of_the_margin_before_the_period() -> None:
    consumer = _Consumer([_Found("t", 0, 17), _Found("t", 1, -1)])
    starts = _start_offsets(cast(Consumer, consumer), "t", SINCE)
    stamp = int((SINCE - SEEK_MARGIN).timestamp() * 1000)
    assert consumer.asked == [(0, stamp), (1, stamp)]
    assert [(tp.partition, tp.offset) for tp in starts] == [(0, 17)]  # partition 1 holds nothing that late


def test_a_partition_whose_start_cannot_be_found_stops_the_report_instead_of_leaving_it_out() -> None:
    # A leader moving (a broker restarting) answers one partition with an error: leaving that partition
    # out would make a report that silently misses its events.
    failed = _Found("t", 1, -1, KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
    consumer = _Consumer([_Found("t", 0, 17), failed])
    with pytest.raises(TopicReadError, match="partition 1"):
        _start_offsets(cast(Consumer, consumer), "t", SINCE)
