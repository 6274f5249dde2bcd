"""Records Faust's fetcher skipped are read again and routed, before Faust may commit past them.

Around a recovery or a rebalance, Faust's fetcher can read ahead of the seek to the committed
offsets, drop what it read, and resume after it (faust-streaming #216, #221, #596). Its drain loop
then sees a jump in a partition's offsets and records the missing range as a "gap" that counts as
acknowledged, because compaction and transaction markers leave such holes too. For the router that
would commit past records nobody routed: a killed router's replacement lost up to 600 of 3,000
records this way on a loaded machine.

So the router keeps the gaps from Faust at first. Each is read back from the source partition
(transaction markers and compacted records simply are not there) and routed in order, before the
record that followed it; only once those deliveries and their audit facts are sent is the range
handed to Faust as acknowledged. A range that cannot be read is retried and, meanwhile, holds the
partition's commits back: a repeat after a crash, never a loss.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import RangeReader, TopicReadError

log = logging.getLogger(__name__)

AddGap = Callable[[Any, int, int], Awaitable[None]]
Route = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Skip:
    start: int  # first offset Faust did not hand over
    end: int  # last one (inclusive, as Faust counts gaps)


def bytes_headers(message: Message) -> list[tuple[str, bytes]]:
    """A read-back record's headers in the shape Faust hands the router (a header without a value
    becomes empty, which the handler treats like a missing one)."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(name, value if isinstance(value, bytes) else (value or "").encode()) for name, value in pairs]


def read_range(access: KafkaAccess, topic: str, partition: int, start: int, end_exclusive: int) -> list[Message]:
    reader = RangeReader(access, topic, partition, start, end_exclusive)
    messages: list[Message] = []
    try:
        while not reader.done:
            messages.extend(reader.next_chunk())
    finally:
        reader.close()
    return messages


class SkipGuard:
    """Holds the gaps Faust notes in source partitions until the router has routed what was in them."""

    def __init__(self, access: KafkaAccess, source_topics: set[str], retry_s: float = 1.0) -> None:
        self.access = access
        self.source_topics = source_topics
        self.retry_s = retry_s
        self._pending: dict[tuple[str, int], list[Skip]] = defaultdict(list)
        self._add_gap: AddGap | None = None
        self.replayed = 0

    def install(self, consumer: Any) -> None:
        """Wraps the Faust consumer's gap bookkeeping (an instance attribute shadows the method)."""
        original: AddGap = consumer._add_gap
        self._add_gap = original

        async def add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
            if tp.topic in self.source_topics:
                self._pending[(tp.topic, tp.partition)].append(Skip(offset_from, offset_to))
                log.warning(
                    "faust skipped %s[%d] offsets %d..%d; reading them again",
                    tp.topic,
                    tp.partition,
                    offset_from,
                    offset_to,
                )
                return
            await original(tp, offset_from, offset_to)

        consumer._add_gap = add_gap

    def due(self, topic: str, partition: int, offset: int) -> list[Skip]:
        """Skips of this partition that lie before ``offset``, taken out of the pending list."""
        pending = self._pending.get((topic, partition))
        if not pending:
            return []
        ready = [s for s in pending if s.end < offset]
        self._pending[(topic, partition)] = [s for s in pending if s.end >= offset]
        return ready

    async def replay(self, tp: Any, skips: list[Skip], route: Route, settle: Callable[[], Awaitable[None]]) -> None:
        """Routes each skipped range's records, then ``settle`` (send their facts), then tells Faust."""
        loop = asyncio.get_running_loop()
        for skip in skips:
            while True:
                try:
                    messages = await loop.run_in_executor(
                        None, read_range, self.access, tp.topic, tp.partition, skip.start, skip.end + 1
                    )
                    break
                except TopicReadError:
                    log.exception(
                        "reading skipped %s[%d] %d..%d failed; retrying", tp.topic, tp.partition, skip.start, skip.end
                    )
                    await asyncio.sleep(self.retry_s)
            for message in messages:
                await route(message)
            self.replayed += len(messages)
        await settle()
        if self._add_gap is not None:
            for skip in skips:
                await self._add_gap(tp, skip.start, skip.end)
