"""The data path's settings (from RouterSettings, app.py) and the source consumer's that follow from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition


@dataclass(frozen=True, slots=True)
class DataPathConfig:
    group: str
    topics: Sequence[str]
    audit_topic: str
    audit_max_bytes: int
    batch_max: int = 2000
    commit_interval_s: float = 1.0
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 2.0
    linger_ms: int = 5
    max_message_bytes: int = 1_000_000
    producers: int = 8


def consumer_settings(
    config: DataPathConfig, on_commit: Callable[[KafkaError | None, list[TopicPartition]], None]
) -> dict[str, Any]:
    """The source consumer's settings; ``on_commit``: the outcome of an asynchronous commit."""
    return {
        "group.id": config.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # A gateway batch is one transaction: the records of an aborted one are never routed.
        "isolation.level": "read_committed",
        "session.timeout.ms": int(config.session_timeout_s * 1000),
        "heartbeat.interval.ms": int(config.heartbeat_interval_s * 1000),
        # A joining or leaving worker moves only the partitions it must (no stop-the-world).
        "partition.assignment.strategy": "cooperative-sticky",
        # Prefetched records of all partitions together (not per partition: 9,510 at city scale).
        "queued.max.messages.kbytes": 16384,
        # The outcome of an asynchronous commit (the periodic ones), served inside consume().
        "on_commit": on_commit,
    }
