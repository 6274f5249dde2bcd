"""The data path commits what Kafka acknowledged, without stopping to flush (acknowledgements.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from sharebus_core.kafka import KafkaAccess
from sharebus_router import acknowledgements
from sharebus_router.acknowledgements import AckLedger, Epoch
from sharebus_router.data_path import DataPath
from sharebus_router.data_path_config import DataPathConfig
from sharebus_router.data_producer import DataProducer
from sharebus_router.metrics import RouterMetrics

SRC = ("ns.src.a", 0)
OTHER = ("ns.src.b", 1)


class Report:
    """What confluent-kafka hands a delivery callback: only the topic is read."""

    def topic(self) -> str:
        return "ns.dlv.x"


def acknowledge(epoch: Epoch, count: int = 1) -> None:
    for _ in range(count):
        epoch(None, cast(Any, Report()))


def test_an_epoch_is_committable_once_it_and_every_earlier_one_are_acknowledged() -> None:
    ledger = AckLedger()
    first = ledger.open
    first.produced = 2
    ledger.cut({SRC: 10}, now=1.0)
    second = ledger.open
    second.produced = 1
    ledger.cut({SRC: 20, OTHER: 5}, now=2.0)
    assert ledger.acknowledged() is None
    acknowledge(second)
    assert ledger.acknowledged() is None  # the first still waits: its offsets are below the second's
    acknowledge(first)
    assert ledger.acknowledged() is None  # one of its two messages only
    acknowledge(first)
    assert ledger.acknowledged() == ({SRC: 20, OTHER: 5}, 1.0)
    assert ledger.acknowledged() is None  # given once


def test_the_open_epoch_is_never_committable_and_an_empty_cut_one_is_at_once() -> None:
    ledger = AckLedger()
    ledger.open.produced = 1
    acknowledge(ledger.open)
    assert ledger.acknowledged() is None  # every message reported, but not cut: no offsets to give
    ledger.cut({SRC: 3}, now=5.0)
    assert ledger.acknowledged() == ({SRC: 3}, 5.0)


def test_a_rejected_message_ends_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exited(Exception):
        pass

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(acknowledgements, "os", SimpleNamespace(_exit=exit_))
    epoch = Epoch()
    epoch.produced = 1
    with pytest.raises(Exited):
        epoch(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), cast(Any, Report()))
    assert epoch.delivered == 0


def test_forgotten_partitions_leave_every_cut_epoch() -> None:
    ledger = AckLedger()
    ledger.cut({SRC: 10, OTHER: 4}, now=1.0)
    ledger.forget([OTHER])
    assert ledger.acknowledged() == ({SRC: 10}, 1.0)


def test_a_late_epoch_is_reported_once() -> None:
    ledger = AckLedger()
    ledger.open.produced = 3
    ledger.cut({SRC: 1}, now=100.0)
    assert ledger.waiting(now=105.0, patience_s=10.0) is None
    late = ledger.waiting(now=111.0, patience_s=10.0)
    assert late is not None
    assert late.produced - late.delivered == 3
    assert ledger.waiting(now=120.0, patience_s=10.0) is None


# -- the data path over fakes -----------------------------------------------------------------------


class FakeProducer:
    def __init__(self) -> None:
        self.reports: list[Any] = []
        self.flushes = 0

    def produce(self, topic: str, value: Any, key: Any, headers: Any = None, on_delivery: Any = None) -> None:
        self.reports.append(on_delivery)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.flushes += 1
        return 0

    def acknowledge_all(self) -> None:
        reports, self.reports = self.reports, []
        for report in reports:
            report(None, Report())


class FakeAccess:
    def __init__(self) -> None:
        self.producers: list[FakeProducer] = []

    def producer(self, config: dict[str, Any]) -> FakeProducer:
        self.producers.append(FakeProducer())
        return self.producers[-1]


class FakeKeeper:
    def __init__(self) -> None:
        self.revoked: list[tuple[str, int]] = []

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        self.revoked += [(tp.topic, tp.partition) for tp in partitions]


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[tuple[list[tuple[str, int, int]], bool]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append(([(tp.topic, tp.partition, tp.offset) for tp in offsets], asynchronous))


def _path() -> tuple[DataPath, FakeProducer, FakeConsumer, CollectorRegistry]:
    access = FakeAccess()
    config = DataPathConfig(group="g", topics=(), audit_topic="facts", audit_max_bytes=1024, producers=1)
    producer = DataProducer(cast(KafkaAccess, access), config)
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry)
    path = DataPath(cast(KafkaAccess, access), config, producer, None, FakeKeeper(), metrics, unreadable=None)  # type: ignore[arg-type]
    path.assigned = {SRC, OTHER}
    return path, access.producers[0], FakeConsumer(), registry


def _route(path: DataPath, tp: tuple[str, int], offset: int) -> None:
    """What routing a record leaves behind: its delivery produced, its next offset noted."""
    path.producer.produce("ns.dlv.x", b"k", b"v", [])
    path._routed[tp] = offset + 1


def test_the_loop_commits_acknowledged_offsets_asynchronously_and_never_flushes() -> None:
    path, producer, consumer, registry = _path()
    _route(path, SRC, 0)
    _route(path, OTHER, 7)
    path._cut(10.0)
    _route(path, SRC, 1)  # after the cut: the next epoch's
    path._commit_acknowledged(cast(Consumer, consumer), 10.1)
    assert consumer.commits == []
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 10.3)
    assert consumer.commits == [([("ns.src.a", 0, 1), ("ns.src.b", 1, 8)], True)]
    assert producer.flushes == 0
    # From the cut to the commit.
    assert registry.get_sample_value("sharebus_router_commit_seconds_sum") == pytest.approx(0.3)
    # What the commit covered is done; what was routed after it waits for the next cut.
    assert path._routed == {SRC: 2}


def test_a_partition_revoked_before_its_epoch_is_acknowledged_is_not_committed() -> None:
    path, producer, consumer, _registry = _path()
    _route(path, SRC, 0)
    _route(path, OTHER, 3)
    path._cut(1.0)
    path._forget([TopicPartition(*OTHER)])
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 1.5)
    assert consumer.commits == [([("ns.src.a", 0, 1)], True)]


def test_a_refused_asynchronous_commit_is_made_again_with_the_next_one() -> None:
    path, producer, consumer, registry = _path()
    path._routed[SRC] = 5
    path._cut(1.0)
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 1.1)  # the asynchronous commit of 5
    assert path._routed == {}
    path._on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), [TopicPartition(*SRC, 5)])
    assert path._routed == {SRC: 5}
    assert registry.get_sample_value("sharebus_router_commit_failures_total", {"reason": "refused"}) == 1
    # Routed further meanwhile: the newer offset stays.
    path._routed[OTHER] = 9
    path._on_commit(None, [TopicPartition(*OTHER, 4)])
    assert path._routed[OTHER] == 9


def test_a_refused_commit_of_an_earlier_ownership_is_not_made_again() -> None:
    """The partition was lost and assigned back while a commit was in flight: its refusal, served now, must
    not put the old offset back (another owner committed past it meanwhile; it would move back)."""
    path, producer, consumer, _registry = _path()
    path._routed[SRC] = 100
    path._cut(1.0)
    producer.acknowledge_all()
    path._commit_acknowledged(cast(Consumer, consumer), 1.1)  # the asynchronous commit of 100, in flight
    path._on_lost(cast(Consumer, consumer), [TopicPartition(*SRC)])
    path.assigned.add(SRC)  # back here (sticky), after another worker committed further
    path._on_commit(KafkaError(KafkaError.ILLEGAL_GENERATION), [TopicPartition(*SRC, 100)])
    assert path._routed == {}
    path._cut(2.0)
    path._commit_acknowledged(cast(Consumer, consumer), 2.1)
    assert consumer.commits == [([("ns.src.a", 0, 100)], True)]
