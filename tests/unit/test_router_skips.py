"""The router routes every offset of a source partition in order, whatever Faust's fetcher lost."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from typing import Any

import pytest

from sharebus_core.kafka import KafkaAccess
from sharebus_router.skips import GapReader, OrderGuard

TP = namedtuple("TP", "topic partition")
SOURCE, OTHER = TP("src", 1), TP("held", 0)


class FakeConsumer:
    def __init__(self) -> None:
        self.gaps: list[tuple[Any, int, int]] = []

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        self.gaps.append((tp, offset_from, offset_to))


class Record:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def offset(self) -> int:
        return self._offset


def test_records_faust_lost_are_routed_in_order_and_repeats_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    committed = {"offset": 100}
    consumer = FakeConsumer()

    def read(self: GapReader, topic: str, partition: int, start: int, end: int) -> list[Record]:
        steps.append(f"read {topic}[{partition}] {start}..{end - 1}")
        return [Record(o) for o in range(start, end) if o != 103]  # 103: a transaction marker

    monkeypatch.setattr(GapReader, "read", read)

    async def committed_offset(topic: str, partition: int) -> int:
        return committed["offset"]

    async def route(message: Any) -> None:
        steps.append(f"route {message.offset()}")

    async def settle() -> None:
        steps.append(f"settle; faust knows {len(consumer.gaps)} gap(s)")

    guard = OrderGuard(KafkaAccess(bootstrap="127.0.0.1:1"), {"src"}, committed_offset, route)
    guard.install(consumer)

    async def scenario() -> list[bool]:
        await consumer._add_gap(SOURCE, 102, 104)  # Faust's own note of the hole: kept from it
        await consumer._add_gap(OTHER, 5, 6)  # other topics' gaps pass straight through
        admitted = [await guard.admit(SOURCE, offset, 1, settle) for offset in (99, 100, 101, 105, 103)]
        committed["offset"] = 104  # a rebalance: the new generation anchors at the committed offset again
        admitted += [await guard.admit(SOURCE, offset, 2, settle) for offset in (103, 104)]
        return admitted

    admitted = asyncio.run(scenario())
    assert admitted == [False, True, True, True, False, False, True]
    assert steps == ["read src[1] 102..104", "route 102", "route 104", "settle; faust knows 1 gap(s)"]
    # Faust learns of the hole only once its records are routed and settled.
    assert consumer.gaps == [(OTHER, 5, 6), (SOURCE, 102, 104)]
    assert (guard.refilled, guard.repeats) == (2, 3)
