"""Seeks every assigned partition to its committed offset with one OffsetFetch, not one per partition.

aiokafka's ``seek_to_committed`` (which Faust calls after every assignment) asks the coordinator for
one partition at a time, and each ask rescans every assigned partition; a partition with no commit is
then asked again by the fetcher. Over a city catalogue (9,528 source partitions) that is ~19,000
sequential round trips and a quadratic scan: the router was not ready after minutes. This does the
same seek with one batched request: a committed offset is sought to, a partition without one is
reset by the consumer's ``auto_offset_reset`` (what the fetcher would have done, partition by
partition), and Faust gets the same answer (partition -> committed offset, None without one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_PATCHED = "_sharebus_batched_seek"


async def batched_seek_to_committed(consumer: Any) -> dict[Any, int | None]:
    """``AIOKafkaConsumer.seek_to_committed()`` for every assigned partition, in one request."""
    partitions = consumer._subscription.assigned_partitions()
    if not partitions:
        return {}
    committed = await consumer._coordinator.fetch_committed_offsets(partitions)
    fetcher = consumer._fetcher
    assignment = consumer._subscription.subscription.assignment
    offsets: dict[Any, int | None] = {}
    without: list[Any] = []
    for tp in partitions:
        meta = committed.get(tp)
        offset = meta.offset if meta is not None and meta.offset >= 0 else None
        offsets[tp] = offset
        if offset:
            # As aiokafka: a commit past 0 is sought to.
            fetcher.seek_to(tp, offset)
            continue
        state = assignment.state_value(tp)
        if state.has_valid_position or state.awaiting_reset:
            # Already reading (Faust seeks again after recoveries): aiokafka leaves such a partition be.
            continue
        if offset == 0:
            fetcher.seek_to(tp, 0)
        else:
            without.append(tp)
    if without:
        # What the fetcher does for a partition without a commit, for all of them at once.
        fetcher.request_offset_reset(without, fetcher._default_reset_strategy)
    return offsets


def batch_seeks() -> None:
    """Makes every Faust worker consumer in this process seek to committed offsets in one request."""
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_class, _PATCHED, False):
        return

    async def seek_to_committed(self: Any) -> Mapping[Any, int | None]:
        return await self.call_thread(batched_seek_to_committed, self._ensure_consumer())  # type: ignore[no-any-return]

    thread_class.seek_to_committed = seek_to_committed
    setattr(thread_class, _PATCHED, True)
