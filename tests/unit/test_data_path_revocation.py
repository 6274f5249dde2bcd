"""At revocation the data path commits every acknowledged offset of the revoked partitions, including one
whose asynchronous commit is still in flight: its refusal is answered after the partition is forgotten."""

from __future__ import annotations

import asyncio
from typing import cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from tests.unit.test_acknowledgements import OTHER, SRC, _path


def test_revocation_commits_an_acknowledged_offset_whose_async_commit_is_still_in_flight() -> None:
    """Before the fix the revocation committed only _routed (emptied when the async commit was issued), and
    the late refusal was ignored: the next owner routed 0..99 again."""
    path, producer, consumer, _registry = _path()
    path._routed[SRC] = 100
    path._cut(1.0)
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 1.1)  # asynchronous commit of 100, not answered yet
    assert consumer.commits == [([("ns.src.a", 0, 100)], True)]
    path._on_revoke(cast(Consumer, consumer), [TopicPartition(*SRC)])
    # The in-flight commit is refused (the rebalance), answered after the revocation.
    path._on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), [TopicPartition(*SRC, 100)])
    synchronous = [c for c in consumer.commits if c[1] is False]
    assert synchronous == [([("ns.src.a", 0, 100)], False)]


def test_revocation_commits_the_larger_of_the_in_flight_and_the_routed_offset() -> None:
    path, producer, consumer, _registry = _path()
    path._routed[SRC] = 100
    path._routed[OTHER] = 7
    path._cut(1.0)
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 1.1)  # 100 and 7 in flight
    path._routed[SRC] = 150  # routed further since
    path._on_revoke(cast(Consumer, consumer), [TopicPartition(*SRC), TopicPartition(*OTHER)])
    synchronous = [c for c in consumer.commits if c[1] is False]
    assert synchronous == [([("ns.src.a", 0, 150), ("ns.src.b", 1, 7)], False)]


def test_an_in_flight_offset_is_committed_at_revocation_even_when_the_flush_falls_short() -> None:
    """The in-flight offset was acknowledged before its commit was issued; only what was routed since waits."""
    path, producer, consumer, _registry = _path()
    path._routed[SRC] = 100
    path._cut(1.0)
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 1.1)
    path._routed[SRC] = 150
    producer.flush = lambda timeout: 3  # type: ignore[method-assign]
    path._on_revoke(cast(Consumer, consumer), [TopicPartition(*SRC)])
    synchronous = [c for c in consumer.commits if c[1] is False]
    assert synchronous == [([("ns.src.a", 0, 100)], False)]


def test_a_revoked_partition_with_nothing_in_flight_or_routed_commits_nothing() -> None:
    path, _producer, consumer, _registry = _path()
    path._on_revoke(cast(Consumer, consumer), [TopicPartition(*SRC)])
    assert consumer.commits == []


def test_an_offset_committed_at_stop_is_not_moved_back_by_the_revocation_that_follows() -> None:
    """stop() commits synchronously, then close() revokes: the in-flight asynchronous commit's older offset
    must not be committed after the newer one (the committed offset would move back: repeats)."""
    path, producer, consumer, _registry = _path()
    path._routed[SRC] = 100
    path._cut(1.0)
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 1.1)  # 100 in flight
    path._routed[SRC] = 150
    path._consumer = cast(Consumer, consumer)
    asyncio.run(path.commit())  # at stop: flushed, then 150 committed synchronously
    path._on_revoke(cast(Consumer, consumer), [TopicPartition(*SRC)])  # what close() does next
    synchronous = [c for c in consumer.commits if c[1] is False]
    assert synchronous == [([("ns.src.a", 0, 150)], False)]
