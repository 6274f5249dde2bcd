"""ensure_topics against a broker that serves what it was asked to create only after a while (no Kafka)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException

from sharebus_core.kafka import KafkaAccess
from sharebus_provision.topics import TopicSpec, ensure_topics


@dataclass
class Partition:
    leader: int


@dataclass
class Topic:
    partitions: dict[int, Partition]
    error: KafkaError | None = None


@dataclass
class Listing:
    topics: dict[str, Topic]


@dataclass
class SlowBroker:
    """Topics the controller has committed; the broker lists them leaderless for ``lag`` listings more."""

    committed: dict[str, int] = field(default_factory=dict)
    lag: int = 2
    listings: int = 0

    def list_topics(self, topic: str | None = None, timeout: float = 0) -> Listing:
        self.listings += 1
        leader = 1 if self.listings > self.lag else -1
        return Listing({name: Topic({p: Partition(leader) for p in range(n)}) for name, n in self.committed.items()})

    def create_topics(self, new: list[Any], **_: Any) -> dict[str, Future[None]]:
        futures: dict[str, Future[None]] = {}
        for spec in new:
            futures[spec.topic] = Future()
            if spec.topic in self.committed:
                futures[spec.topic].set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
            else:
                self.committed[spec.topic] = spec.num_partitions
                futures[spec.topic].set_result(None)
        return futures

    @property
    def serving(self) -> bool:
        return self.listings > self.lag


@dataclass
class Access:
    broker: SlowBroker
    bootstrap: str = "broker:9092"
    principal: str = "User:sharebus-operator"

    def admin(self) -> SlowBroker:
        return self.broker


def test_a_topic_that_exists_already_but_is_not_listed_yet_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that gave up waiting said "run again to wait for them" (or another run created it meanwhile):
    the broker does not list it yet, the controller answers "already exists", and it must be waited for,
    not taken as served."""
    monkeypatch.setattr("sharebus_provision.topics.time.sleep", lambda _s: None)
    broker = SlowBroker(committed={"ns.src.b": 2}, lag=3)
    listed = broker.list_topics

    def not_applied_at_first(topic: str | None = None, timeout: float = 0) -> Listing:
        listing = listed(topic, timeout)
        return Listing({}) if broker.listings == 1 else listing

    monkeypatch.setattr(broker, "list_topics", not_applied_at_first)
    assert ensure_topics(cast(KafkaAccess, Access(broker)), [TopicSpec("ns.src.b", 2)]) == []
    assert broker.serving
