"""Every offset of a source partition is routed, in order, before Faust may commit past it.

Around a recovery or a rebalance, Faust's fetcher can read ahead of the seek to the committed
offsets and lose what it read (faust-streaming #216, #221, #596) in two ways:
- it drops fetched records and resumes after them, then records the hole as a "gap" that counts as
  acknowledged (compaction and transaction markers leave such holes too), so it commits past
  records nobody routed;
- it hands records to the stream and clears the stream's queue, so the agent never sees them.
A killed router's replacement lost up to 600 of 3,000 records these ways on a loaded machine.

So the router checks the offsets it is given. Per partition and consumer generation it anchors at
the group's committed offset and expects each next offset in turn:
- a record past the expected offset means the ones between were lost on the way: they are read
  back from the partition (transaction markers and compacted records simply are not there) and
  routed first;
- a record before it was routed already (by this worker or, below the committed offset, by the
  previous owner): it is acknowledged and not routed again.
Gaps Faust notes are kept from it until the range is routed and its audit facts are sent; only then
does Faust learn of them (as acknowledged). A range that cannot be read is retried and, meanwhile,
holds the partition's commits back: a repeat after a crash, never a loss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import RangeReader, TopicReadError

log = logging.getLogger(__name__)

AddGap = Callable[[Any, int, int], Awaitable[None]]
Route = Callable[[Message], Awaitable[None]]
Settle = Callable[[], Awaitable[None]]
Committed = Callable[[str, int], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Expectation:
    generation: int | None
    next_offset: int


def bytes_headers(message: Message) -> list[tuple[str, bytes]]:
    """A read-back record's headers in the shape Faust hands the router (a header without a value
    becomes empty, which the handler treats like a missing one)."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(name, value if isinstance(value, bytes) else (value or "").encode()) for name, value in pairs]


class GapReader:
    """One consumer (committed records only) for every hole the guard reads: a gateway transaction's
    commit marker leaves a one-offset hole after each publish request, so a connection per hole
    would cost more than the request."""

    def __init__(self, access: KafkaAccess) -> None:
        self.access = access
        self._reader: RangeReader | None = None

    def read(self, topic: str, partition: int, start: int, end_exclusive: int) -> list[Message]:
        if self._reader is None:
            self._reader = RangeReader(self.access, topic, partition, start, end_exclusive)
        else:
            self._reader.reset(topic, partition, start, end_exclusive)
        messages: list[Message] = []
        try:
            while not self._reader.done:
                messages.extend(self._reader.next_chunk())
        except TopicReadError:
            self.close()  # a fresh consumer next time
            raise
        return messages

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


class OrderGuard:
    """Admits a source partition's records to routing only in offset order, filling what Faust lost."""

    def __init__(
        self,
        access: KafkaAccess,
        source_topics: set[str],
        committed: Committed,
        route: Route,
        retry_s: float = 1.0,
    ) -> None:
        self.access = access
        self.source_topics = source_topics
        self.committed = committed
        self.route = route
        self.retry_s = retry_s
        self._expected: dict[tuple[str, int], Expectation] = {}
        self.reader = GapReader(access)
        self._add_gap: AddGap | None = None
        self.refilled = 0  # records read back and routed
        self.repeats = 0  # records handed over again and not routed twice

    def install(self, consumer: Any) -> None:
        """Keeps the gaps Faust notes in source partitions from it (an instance attribute shadows the
        method); ``admit`` fills them and then passes them on."""
        original: AddGap = consumer._add_gap
        self._add_gap = original

        async def add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
            if tp.topic not in self.source_topics:
                await original(tp, offset_from, offset_to)

        consumer._add_gap = add_gap

    async def admit(self, tp: Any, offset: int, generation: int | None, settle: Settle) -> bool:
        """True when the record at ``offset`` is the next one to route; first routes any it skipped."""
        key = (tp.topic, tp.partition)
        expected = self._expected.get(key)
        if expected is None or expected.generation != generation:
            expected = Expectation(generation, await self.committed(tp.topic, tp.partition))
        if offset < expected.next_offset:
            self.repeats += 1
            self._expected[key] = expected
            return False
        if offset > expected.next_offset:
            await self._refill(tp, expected.next_offset, offset, settle)
        self._expected[key] = Expectation(generation, offset + 1)
        return True

    async def _refill(self, tp: Any, start: int, end: int, settle: Settle) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                messages = await loop.run_in_executor(None, self.reader.read, tp.topic, tp.partition, start, end)
                break
            except TopicReadError:
                log.exception("reading %s[%d] %d..%d failed; retrying", tp.topic, tp.partition, start, end - 1)
                await asyncio.sleep(self.retry_s)
        for message in messages:
            await self.route(message)
        self.refilled += len(messages)
        if messages:
            # Records Faust lost; an empty hole is only transaction markers or aborted records.
            log.warning(
                "faust skipped %s[%d] offsets %d..%d; routed the %d record(s) there",
                tp.topic,
                tp.partition,
                start,
                end - 1,
                len(messages),
            )
        # The range's deliveries and facts are sent before Faust may count it as acknowledged.
        await settle()
        if self._add_gap is not None:
            await self._add_gap(tp, start, end - 1)
