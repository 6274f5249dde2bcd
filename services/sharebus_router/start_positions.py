"""Where each source partition assigned to the data path starts: its committed offset, else its log start.

Left to itself, librdkafka asks one ListOffsets per partition without a committed offset (at city scale,
thousands of quiet partitions), and a request cut by a closing connection (the broker ends any that does
not re-authenticate within 10 s) is asked again only at the next metadata refresh, minutes later: that
partition's records waited for it. Here it is one OffsetFetch and one batched ListOffsets; if either
fails, librdkafka does it its own way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, TopicPartition

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError
from sharebus_router.metrics import RouterMetrics

log = logging.getLogger(__name__)

Starts = Callable[[KafkaAccess, list[TopicPartition], float], dict[tuple[str, int], int]]


def start_positions(
    consumer: Consumer,
    partitions: list[TopicPartition],
    access: KafkaAccess,
    starts: Starts,
    timeout_s: float,
    metrics: RouterMetrics,
) -> list[TopicPartition]:
    """The partitions, each at where it starts (as they are when that cannot be known: the consumer asks)."""
    try:
        committed = consumer.committed([TopicPartition(tp.topic, tp.partition) for tp in partitions], timeout_s)
        fresh = [tp for tp in committed if tp.error is None and tp.offset < 0]
        found = starts(access, fresh, timeout_s)
    except (KafkaException, TopicReadError) as exc:
        log.warning("start offsets of %d partition(s) unknown (%s); the consumer asks", len(partitions), exc)
        metrics.start_offset_failures.inc()
        return partitions
    positioned = []
    for tp in committed:
        # Without the leader epoch: a known epoch makes librdkafka validate each partition in turn.
        offset = found.get((tp.topic, tp.partition), tp.offset) if tp.error is None else OFFSET_INVALID
        positioned.append(TopicPartition(tp.topic, tp.partition, offset))
    return positioned
