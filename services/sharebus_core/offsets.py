"""Committed offsets of a consumer group, read without joining the group."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess


class OffsetLookupError(SharebusError, RuntimeError):
    pass


# The group's coordinator moved (its broker stopped) or is still loading the offsets topic after a
# move: both pass within seconds, once the new coordinator has the offsets partition.
_COORDINATOR_MOVING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
}
_RETRY_S = 0.5


def committed_offsets(
    access: KafkaAccess, group: str, topics: list[str], timeout_s: float = 10.0
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the group's committed offset, 0 where it has committed nothing yet.

    While the group's coordinator moves to another broker, the lookup is retried until ``timeout_s``.
    A partition answered with an error raises: read as 0, it would become a hand-over point at the
    log's start, and a backfill would then replay nothing below a point that live delivery passed long
    ago (a gap the subscriber never hears of).
    """
    consumer = access.consumer({"group.id": group, "enable.auto.commit": False})
    deadline = time.monotonic() + timeout_s
    try:
        metadata = consumer.list_topics(timeout=timeout_s).topics
        wanted = [TopicPartition(t, p) for t in topics if t in metadata for p in sorted(metadata[t].partitions)]
        if not wanted:
            return {}
        while True:
            try:
                found = _committed(consumer, wanted, max(1.0, deadline - time.monotonic()))
            except KafkaException as exc:
                code = exc.args[0].code()
                if code in _COORDINATOR_MOVING and time.monotonic() + _RETRY_S < deadline:
                    time.sleep(_RETRY_S)
                    continue
                raise OffsetLookupError(f"cannot read the committed offsets of group {group}: {exc}") from exc
            return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found}
    finally:
        consumer.close()


def _committed(consumer: Consumer, wanted: list[TopicPartition], timeout_s: float) -> list[TopicPartition]:
    """The committed offsets, a partition's own error raised like a whole request's."""
    found = consumer.committed(wanted, timeout=timeout_s)
    failed = next((tp for tp in found if tp.error is not None), None)
    if failed is not None:
        raise KafkaException(failed.error)
    return found
