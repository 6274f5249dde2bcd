"""Which of a Subscriber's offsets may be committed (``subscriber.py``)."""

from __future__ import annotations

from confluent_kafka import TopicPartition

Position = tuple[str, int, int]


class OffsetBook:
    """Which offsets may be committed: never past a message the caller has not finished with.

    A message is open from the moment it is consumed until the caller asks for the next item after
    receiving it (or it is skipped). Records of an incomplete batch stay open until the whole batch
    has been handed out, so a crash mid-batch receives the batch again.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, int], set[int]] = {}
        self._next: dict[tuple[str, int], int] = {}
        self._stored: dict[tuple[str, int], int] = {}

    def consumed(self, position: Position) -> None:
        topic, partition, offset = position
        self._open.setdefault((topic, partition), set()).add(offset)
        tp = (topic, partition)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def forget(self, partitions: set[tuple[str, int]]) -> None:
        """Partitions revoked from this member: nothing more is stored for them (librdkafka refuses
        an offset for a partition not assigned), and a later assignment starts afresh."""
        for tp in partitions:
            self._open.pop(tp, None)
            self._next.pop(tp, None)
            self._stored.pop(tp, None)

    def done(self, positions: list[Position]) -> None:
        for topic, partition, offset in positions:
            self._open.get((topic, partition), set()).discard(offset)

    def to_store(self) -> list[TopicPartition]:
        changes = []
        for tp, next_offset in self._next.items():
            open_offsets = self._open.get(tp)
            position = min(open_offsets) if open_offsets else next_offset
            if self._stored.get(tp) != position:
                self._stored[tp] = position
                changes.append(TopicPartition(tp[0], tp[1], position))
        return changes
