"""The router reads back what Faust's fetcher skipped, before Faust may commit past it."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from typing import Any

import pytest

from sharebus_core.kafka import KafkaAccess
from sharebus_router import skips
from sharebus_router.skips import Skip, SkipGuard

TP = namedtuple("TP", "topic partition")


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


def test_a_skip_in_a_source_topic_is_held_until_the_router_routed_it(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = FakeConsumer()
    guard = SkipGuard(KafkaAccess(bootstrap="127.0.0.1:1"), {"src"})
    guard.install(consumer)
    source, other = TP("src", 1), TP("held", 0)

    async def scenario() -> list[str]:
        steps: list[str] = []
        await consumer._add_gap(source, 328, 408)
        await consumer._add_gap(other, 5, 6)
        # Faust does not learn of the source gap yet; other topics' gaps pass straight through.
        assert consumer.gaps == [(other, 5, 6)]
        assert guard.due("src", 1, 300) == []  # the skip lies after this record
        due = guard.due("src", 1, 409)
        assert due == [Skip(328, 408)]
        assert guard.due("src", 1, 409) == []  # taken once

        def read_range(access: KafkaAccess, topic: str, partition: int, start: int, end: int) -> list[Record]:
            steps.append(f"read {topic}[{partition}] {start}..{end}")
            return [Record(o) for o in range(start, end)]

        monkeypatch.setattr(skips, "read_range", read_range)

        async def route(message: Any) -> None:
            steps.append(f"route {message.offset()}")

        async def settle() -> None:
            steps.append(f"settle; faust knows {len(consumer.gaps)} gap(s)")

        await guard.replay(source, due, route, settle)
        return steps

    steps = asyncio.run(scenario())
    assert steps[0] == "read src[1] 328..409"
    assert steps[1:82] == [f"route {o}" for o in range(328, 409)]
    assert steps[82:] == ["settle; faust knows 1 gap(s)"]  # routed and settled before Faust may commit past
    assert consumer.gaps == [(TP("held", 0), 5, 6), (source, 328, 408)]
    assert guard.replayed == 81
