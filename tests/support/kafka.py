"""Reading topics and metrics back in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Message, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from sharebus_core.kafka import KafkaAccess
from tests.support.names import unique
from tests.support.scrape import scraped

T = TypeVar("T")


def end_offsets(access: KafkaAccess, topic: str) -> int:
    """Records in a topic (sum of high-water marks over its partitions)."""
    consumer = access.consumer({"group.id": unique("probe")})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def read_all(access: KafkaAccess, topic: str, expected: int, timeout_s: float = 60.0) -> list[Message]:
    """Reads a topic from the start until ``expected`` records arrived (or the time is up)."""
    consumer = access.consumer(
        {
            "group.id": unique("reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                messages.append(msg)
    finally:
        consumer.close()
    return messages


_SAMPLE_SUFFIXES = ("", "_total", "_created", "_count", "_sum", "_bucket", "_info")


def metric(metrics_url: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``.

    A name the process does not declare at all raises, so that ``== 0`` cannot pass after a
    rename; a declared family with no matching sample yet sums to 0.
    """
    text = scraped(metrics_url).text
    total = 0.0
    declared = False
    for family in text_string_to_metric_families(text):
        declared = declared or any(family.name + suffix == name for suffix in _SAMPLE_SUFFIXES)
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    if not declared:
        raise AssertionError(f"{metrics_url} declares no metric {name!r}")
    return total


def eventually(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 60.0) -> T:
    """Polls ``probe`` until ``done`` holds; returns the last value either way so asserts show it."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = probe()
    return value
