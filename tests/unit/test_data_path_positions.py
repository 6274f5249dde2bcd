"""Where the data path starts each partition it is assigned: the committed offset, else the log start,
read in one OffsetFetch and one batched ListOffsets, never one request per partition.

Left to librdkafka, a partition without a committed offset costs its own ListOffsets; over the city's
9,510 source partitions a request cut by a re-authenticating connection waited minutes for the next
metadata refresh, and the partition's records with it (bench.scale, issue 13). The consumer is a fake:
this is the assignment logic only; the router's integration tests run it on the real broker."""

from __future__ import annotations

from typing import Any

from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError
from sharebus_router.data_path import DataPath
from sharebus_router.data_path_config import DataPathConfig
from sharebus_router.data_producer import DataProducer
from sharebus_router.metrics import RouterMetrics

ACCESS = KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")


class Keeper:
    def __init__(self) -> None:
        self.assigned: list[Any] = []

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.assigned += partitions


class Consumer:
    def __init__(self, committed: dict[tuple[str, int], int], fail: bool = False) -> None:
        self._committed = committed
        self.fail = fail
        self.assigned: list[TopicPartition] | None = None
        self.asked: list[list[tuple[str, int]]] = []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.asked.append([(tp.topic, tp.partition) for tp in partitions])
        if self.fail:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        found = []
        for tp in partitions:
            offset = self._committed.get((tp.topic, tp.partition), -1001)
            found.append(TopicPartition(tp.topic, tp.partition, offset, leader_epoch=7))
        return found

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions


def data_path(starts: Any) -> tuple[DataPath, RouterMetrics]:
    metrics = RouterMetrics(CollectorRegistry())
    config = DataPathConfig(group="g", topics=["a", "b"], audit_topic="facts", audit_max_bytes=1000)
    producer = DataProducer.__new__(DataProducer)
    path = DataPath(ACCESS, config, producer, None, Keeper(), metrics, starts=starts, unreadable=None)  # type: ignore[arg-type]
    return path, metrics


def test_committed_partitions_keep_their_offset_and_the_rest_start_at_the_log_start() -> None:
    asked: list[list[tuple[str, int]]] = []

    def starts(access: KafkaAccess, partitions: list[TopicPartition], timeout_s: float) -> dict[tuple[str, int], int]:
        asked.append([(tp.topic, tp.partition) for tp in partitions])
        return {(tp.topic, tp.partition): 40 for tp in partitions}

    path, metrics = data_path(starts)
    consumer = Consumer({("a", 0): 12, ("b", 1): 0})
    partitions = [TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 1), TopicPartition("b", 2)]
    path._on_assign(consumer, partitions)  # type: ignore[arg-type]
    assert consumer.assigned is not None
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.assigned] == [
        ("a", 0, 12),
        ("a", 1, 40),
        ("b", 1, 0),
        ("b", 2, 40),
    ]
    # One question each for the whole assignment, the log start only for those never committed.
    assert consumer.asked == [[("a", 0), ("a", 1), ("b", 1), ("b", 2)]]
    assert asked == [[("a", 1), ("b", 2)]]
    # No leader epoch: librdkafka would validate each partition with a request of its own.
    assert all(tp.leader_epoch is None for tp in consumer.assigned)
    assert path.assigned == {("a", 0), ("a", 1), ("b", 1), ("b", 2)}
    assert metrics.start_offset_failures._value.get() == 0


def test_offsets_that_cannot_be_read_leave_the_partitions_to_the_consumer() -> None:
    def unreadable(
        access: KafkaAccess, partitions: list[TopicPartition], timeout_s: float
    ) -> dict[tuple[str, int], int]:
        raise TopicReadError("the broker did not answer")

    for consumer, starts in ((Consumer({}, fail=True), None), (Consumer({("a", 0): 3}), unreadable)):
        path, metrics = data_path(starts)
        partitions = [TopicPartition("a", 0), TopicPartition("a", 1)]
        path._on_assign(consumer, partitions)  # type: ignore[arg-type]
        # As assigned (no offset): librdkafka reads the committed offset or resets, as it would alone.
        assert consumer.assigned is partitions
        assert all(tp.offset == OFFSET_INVALID for tp in consumer.assigned)
        assert path.assigned == {("a", 0), ("a", 1)}
        assert metrics.start_offset_failures._value.get() == 1
