"""The data path's producers: each topic always through the same one, flushed together (data_path.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from sharebus_core.kafka import KafkaAccess
from sharebus_router import data_producer
from sharebus_router.data_path_config import DataPathConfig
from sharebus_router.data_producer import DataProducer


class FakeProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.sent: list[str] = []
        self.polls = 0
        self.unacknowledged = 0
        self.flush_timeouts: list[float] = []

    def produce(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Any = None, on_delivery: Any = None
    ) -> None:
        self.sent.append(topic)

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0

    def flush(self, timeout: float) -> int:
        self.flush_timeouts.append(timeout)
        return self.unacknowledged


class FakeAccess:
    def __init__(self) -> None:
        self.made: list[FakeProducer] = []

    def producer(self, config: dict[str, Any]) -> FakeProducer:
        self.made.append(FakeProducer(config))
        return self.made[-1]


def _producer(count: int) -> tuple[DataProducer, FakeAccess]:
    access = FakeAccess()
    config = DataPathConfig(group="g", topics=(), audit_topic="facts", audit_max_bytes=1024, producers=count)
    return DataProducer(cast(KafkaAccess, access), config), access


def test_each_topic_keeps_one_producer_and_the_topics_are_spread() -> None:
    producer, access = _producer(4)
    assert len(access.made) == 4
    assert all(p.config["enable.idempotence"] for p in access.made)
    topics = [f"ns.dlv.system-{n}" for n in range(200)]
    for _ in range(3):
        for topic in topics:
            producer.produce(topic, b"k", b"v", [])
    senders = {topic: [i for i, p in enumerate(access.made) if topic in p.sent] for topic in topics}
    # Every message of a topic through one producer: its partitions keep their order.
    assert all(len(used) == 1 for used in senders.values())
    assert {used[0] for used in senders.values()} == {0, 1, 2, 3}
    producer.poll()
    assert [p.polls for p in access.made] == [1, 1, 1, 1]


def test_a_flush_counts_what_any_producer_still_holds_within_one_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    producer, access = _producer(3)
    assert producer.flush(5.0) == 0
    access.made[1].unacknowledged = 7
    access.made[2].unacknowledged = 2
    assert producer.flush(5.0) == 9
    # The first producer's flush takes 2 s: the others get what is left of the one deadline, not 5 s each.
    now = [100.0]
    monkeypatch.setattr(data_producer, "time", SimpleNamespace(monotonic=lambda: now[0]))
    first = access.made[0]

    def slow_flush(timeout: float) -> int:
        first.flush_timeouts.append(timeout)
        now[0] += 2.0
        return 0

    monkeypatch.setattr(first, "flush", slow_flush)
    producer.flush(5.0)
    assert [p.flush_timeouts[-1] for p in access.made] == [5.0, 3.0, 3.0]
