"""The router's seek to committed offsets: one OffsetFetch for every assigned partition (pure, with fakes)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import OffsetAndMetadata, TopicPartition

from sharebus_router.fast_seek import batched_seek_to_committed


class _Coordinator:
    def __init__(self, committed: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.committed = committed
        self.requests: list[set[TopicPartition]] = []

    async def fetch_committed_offsets(self, partitions: set[TopicPartition]) -> dict[TopicPartition, Any]:
        self.requests.append(set(partitions))
        return {tp: meta for tp, meta in self.committed.items() if tp in partitions}


class _Fetcher:
    _default_reset_strategy = "earliest"

    def __init__(self) -> None:
        self.sought: dict[TopicPartition, int] = {}
        self.reset: list[tuple[list[TopicPartition], str]] = []

    def seek_to(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset

    def request_offset_reset(self, tps: list[TopicPartition], strategy: str) -> None:
        self.reset.append((sorted(tps), strategy))


def test_one_request_seeks_the_committed_and_resets_the_rest() -> None:
    assigned = {TopicPartition(f"t{i}", p) for i in range(500) for p in range(3)}
    committed = {TopicPartition("t0", 0): OffsetAndMetadata(7, ""), TopicPartition("t0", 1): OffsetAndMetadata(0, "")}
    committed[TopicPartition("t0", 2)] = OffsetAndMetadata(-1, "")
    coordinator, fetcher = _Coordinator(committed), _Fetcher()
    reading = TopicPartition("t1", 0)
    states = {tp: SimpleNamespace(has_valid_position=tp == reading, awaiting_reset=False) for tp in assigned}
    consumer = SimpleNamespace(
        _subscription=SimpleNamespace(
            assigned_partitions=lambda: assigned,
            subscription=SimpleNamespace(assignment=SimpleNamespace(state_value=states.__getitem__)),
        ),
        _coordinator=coordinator,
        _fetcher=fetcher,
    )
    offsets = asyncio.run(batched_seek_to_committed(consumer))
    assert coordinator.requests == [assigned]
    assert fetcher.sought == {TopicPartition("t0", 0): 7, TopicPartition("t0", 1): 0}
    assert offsets[TopicPartition("t0", 0)] == 7
    assert offsets[TopicPartition("t0", 2)] is None
    assert len(offsets) == len(assigned)
    (reset, strategy), *more = fetcher.reset
    assert not more
    assert strategy == "earliest"
    # A partition already being read keeps its position, as aiokafka leaves it (Faust seeks again later).
    assert set(reset) == assigned - {TopicPartition("t0", 0), TopicPartition("t0", 1), reading}


def test_nothing_assigned_asks_nothing() -> None:
    coordinator = _Coordinator({})
    consumer = SimpleNamespace(
        _subscription=SimpleNamespace(assigned_partitions=set),
        _coordinator=coordinator,
        _fetcher=_Fetcher(),
    )
    assert asyncio.run(batched_seek_to_committed(consumer)) == {}
    assert coordinator.requests == []
