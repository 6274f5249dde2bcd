"""Committed offsets are read again while the group's coordinator moves to another broker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from sharebus_core import offsets
from sharebus_core.kafka import KafkaAccess
from sharebus_core.offsets import OffsetLookupError, committed_offsets


class FakeConsumer:
    """Answers ``committed`` with the given errors first, then with offset 7 for every partition."""

    def __init__(self, errors: list[int]) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.closed = False

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(topics={"src": SimpleNamespace(partitions={0: None, 1: None})})

    def committed(self, wanted: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return [TopicPartition(tp.topic, tp.partition, 7) for tp in wanted]

    def close(self) -> None:
        self.closed = True


def _with(monkeypatch: pytest.MonkeyPatch, consumer: FakeConsumer) -> KafkaAccess:
    monkeypatch.setattr(KafkaAccess, "consumer", lambda self, config=None: consumer)
    monkeypatch.setattr(offsets, "_RETRY_S", 0.01)
    return KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")


def test_a_moving_coordinator_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer([KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS])
    found = committed_offsets(_with(monkeypatch, consumer), "g", ["src"])
    assert found == {("src", 0): 7, ("src", 1): 7}
    assert consumer.calls == 3
    assert consumer.closed


def test_other_errors_are_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer([KafkaError.GROUP_AUTHORIZATION_FAILED])
    with pytest.raises(OffsetLookupError, match="committed offsets of group g"):
        committed_offsets(_with(monkeypatch, consumer), "g", ["src"])
    assert consumer.calls == 1
    assert consumer.closed


def test_a_coordinator_that_never_settles_ends_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer([KafkaError.NOT_COORDINATOR] * 1000)
    with pytest.raises(OffsetLookupError):
        committed_offsets(_with(monkeypatch, consumer), "g", ["src"], timeout_s=0.2)
    assert 1 < consumer.calls < 1000


class PartlyFailing(FakeConsumer):
    """Answers every partition, but with a per-partition error on partition 1 for the first ``times`` calls."""

    def __init__(self, code: int, times: int) -> None:
        super().__init__([])
        self.code, self.times = code, times

    def committed(self, wanted: list[TopicPartition], timeout: float) -> list[Any]:
        self.calls += 1
        failing = self.calls <= self.times
        return [
            SimpleNamespace(
                topic=tp.topic,
                partition=tp.partition,
                offset=-1001 if failing and tp.partition == 1 else 7,
                error=KafkaError(self.code) if failing and tp.partition == 1 else None,
            )
            for tp in wanted
        ]


def test_a_partition_answered_with_an_error_is_not_read_as_nothing_committed(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = PartlyFailing(KafkaError.TOPIC_AUTHORIZATION_FAILED, times=1)
    with pytest.raises(OffsetLookupError, match="TOPIC_AUTHORIZATION_FAILED"):
        committed_offsets(_with(monkeypatch, consumer), "g", ["src"])
    # A partition whose coordinator is loading is asked again, like a whole request.
    loading = PartlyFailing(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, times=2)
    assert committed_offsets(_with(monkeypatch, loading), "g", ["src"]) == {("src", 0): 7, ("src", 1): 7}
    assert loading.calls == 3
