"""One topic partition in memory, and a consumer of it, for tests that run a real ``LogFollower`` thread."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, Message, TopicPartition

from sharebus_core.produce import Written


class Broker:
    """One partition in memory. ``held`` keeps what is appended from its readers until released."""

    def __init__(self) -> None:
        self.records: list[Message] = []
        self.visible = 0
        self.held = False
        self.changed = threading.Condition()

    def append(self, _access: object, topic: str, key: bytes, value: bytes, timeout_s: float = 30.0) -> Written:
        with self.changed:
            offset = len(self.records)
            stamp = (TIMESTAMP_LOG_APPEND_TIME, time.time_ns() // 1_000_000)
            self.records.append(Message(topic=topic, partition=0, offset=offset, key=key, value=value, timestamp=stamp))
            if not self.held:
                self.visible = len(self.records)
            self.changed.notify_all()
            return Written(0, offset)

    def release(self) -> None:
        with self.changed:
            self.held = False
            self.visible = len(self.records)
            self.changed.notify_all()


class Consumer:
    def __init__(self, broker: Broker, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self.next = 0
        self.eof_at = -1

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions={0: None}, error=None)})

    def get_watermark_offsets(self, _tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, self.broker.visible

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.next = max(partitions[0].offset, 0)

    def poll(self, timeout: float) -> Message | None:
        b = self.broker
        with b.changed:
            if self.next >= b.visible:
                if self.eof_at != self.next:
                    self.eof_at = self.next
                    return Message(
                        topic=self.topic, partition=0, offset=self.next, error=KafkaError(KafkaError._PARTITION_EOF)
                    )
                b.changed.wait(timeout)
                if self.next >= b.visible:
                    return None
            self.next += 1
            return b.records[self.next - 1]

    def close(self) -> None:
        return None
