"""Committed offsets of a consumer group, read without joining the group."""

from __future__ import annotations

from confluent_kafka import KafkaException, TopicPartition

from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess


class OffsetLookupError(SharebusError, RuntimeError):
    pass


def committed_offsets(
    access: KafkaAccess, group: str, topics: list[str], timeout_s: float = 10.0
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the group's committed offset, 0 where it has committed nothing yet."""
    consumer = access.consumer({"group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=timeout_s).topics
        wanted = [TopicPartition(t, p) for t in topics if t in metadata for p in sorted(metadata[t].partitions)]
        if not wanted:
            return {}
        try:
            found = consumer.committed(wanted, timeout=timeout_s)
        except KafkaException as exc:
            raise OffsetLookupError(f"cannot read the committed offsets of group {group}: {exc}") from exc
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}
    finally:
        consumer.close()
