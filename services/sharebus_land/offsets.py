"""Which offset the database may store per partition: never past a record it does not yet hold.

Every record is landed (or skipped) in the transaction that follows its read, except the parts of
a periodic batch: they stay open until the whole batch is landed, so a crash mid-batch reads the
batch again from its first part. Records read after an open part are applied and read again after
a crash; they replay in order, so the upserts end in the same state.
"""

from __future__ import annotations

TopicPartitionKey = tuple[str, int]
Position = tuple[str, int, int]


class OffsetBook:
    def __init__(self) -> None:
        self._open: dict[TopicPartitionKey, set[int]] = {}
        self._next: dict[TopicPartitionKey, int] = {}
        self._stored: dict[TopicPartitionKey, int] = {}

    def read(self, position: Position) -> None:
        topic, partition, offset = position
        tp = (topic, partition)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def hold(self, position: Position) -> None:
        self.read(position)
        self._open.setdefault((position[0], position[1]), set()).add(position[2])

    def release(self, positions: list[Position]) -> None:
        for topic, partition, offset in positions:
            self._open.get((topic, partition), set()).discard(offset)

    def to_store(self) -> dict[TopicPartitionKey, int]:
        """The offsets that changed since the last call: what the next transaction writes."""
        changes = {}
        for tp, next_offset in self._next.items():
            held = self._open.get(tp)
            position = min(held) if held else next_offset
            if self._stored.get(tp) != position:
                self._stored[tp] = changes[tp] = position
        return changes
