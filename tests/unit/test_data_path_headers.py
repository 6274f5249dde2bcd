"""A record whose headers confluent-kafka cannot read is that record's fault: dead-lettered, and the batch goes on.

confluent-kafka 2.16 raises SystemError from ``Message.headers()`` for a header name that is not UTF-8 (which a
client in C can publish; tests/integration/test_router_poison.py does). The data path used to let it end the
worker, and every restart met the same record first."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from confluent_kafka import Message
from prometheus_client import CollectorRegistry

from sharebus_core.kafka import KafkaAccess, UnreadableHeaders, message_headers
from sharebus_router.data_path import DataPath
from sharebus_router.data_path_config import DataPathConfig
from sharebus_router.data_producer import DataProducer
from sharebus_router.metrics import RouterMetrics


class Record:
    def __init__(self, offset: int, headers: list[tuple[str, bytes | None]] | None, broken: bool = False) -> None:
        self._offset, self._headers, self._broken = offset, headers, broken

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "ns.src.a"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return f"k{self._offset}".encode()

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        if self._broken:
            raise SystemError("<method 'headers'> returned a result with an exception set")
        return self._headers


class Keeper:
    def __init__(self) -> None:
        self.ready = {("ns.src.a", 0)}


def test_message_headers_turns_any_failure_into_unreadable_headers() -> None:
    assert message_headers(cast(Message, Record(0, None))) == []
    assert message_headers(cast(Message, Record(0, [("a", b"1"), ("b", None)]))) == [("a", b"1"), ("b", None)]
    with pytest.raises(UnreadableHeaders, match=r"headers cannot be read \(SystemError"):
        message_headers(cast(Message, Record(0, None, broken=True)))


def test_a_record_with_unreadable_headers_is_dead_lettered_and_the_rest_of_the_batch_routed() -> None:
    routed: list[tuple[int, list[Any]]] = []
    unreadable: list[tuple[int, bytes | None, str]] = []

    async def route(topic: str, partition: int, offset: int, key: Any, value: Any, raw: list[Any]) -> None:
        routed.append((offset, raw))

    async def dead(topic: str, partition: int, offset: int, key: bytes | None, value: Any, why: str) -> None:
        unreadable.append((offset, key, why))

    config = DataPathConfig(group="g", topics=["ns.src.a"], audit_topic="facts", audit_max_bytes=1000)
    access = KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")
    metrics = RouterMetrics(CollectorRegistry())
    producer = DataProducer.__new__(DataProducer)
    path = DataPath(access, config, producer, route, cast(Any, Keeper()), metrics, unreadable=dead)
    batch = [Record(0, [("x", b"1")]), Record(1, None, broken=True), Record(2, None)]
    asyncio.run(path._route_batch(cast(list[Message], batch)))
    assert routed == [(0, [("x", b"1")]), (2, [])]
    assert [(offset, key) for offset, key, _ in unreadable] == [(1, b"k1")]
    assert "SystemError" in unreadable[0][2]
    # Its offset is passed like any routed record's: the next commit moves past it.
    assert path._routed == {("ns.src.a", 0): 3}
