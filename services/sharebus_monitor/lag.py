"""Consumer lag as pure functions over offsets, and the "growing" judgement over a window of samples.

Lag is reported per (group, topic), summed over partitions. Partition ids are bounded too, but at city
scale (3,170 source topics of 3-12 partitions each) they would multiply the router's series by the
partition count for a question ops answer per topic ("is this class falling behind?"); per-partition
skew is a job for Kafka's own tools.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass

# (topic, partition)
Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LagSample:
    group: str
    topic: str
    records: int
    growing: bool


def lag_by_topic(
    committed: Mapping[Partition, int | None], earliest: Mapping[Partition, int], latest: Mapping[Partition, int]
) -> tuple[dict[str, int], set[str]]:
    """Records behind the high-water mark, summed per topic, over the partitions in ``latest``; and the
    topics whose lag is unknown this time.

    A partition the group has not committed on yet is read from its earliest offset (the bus's
    consumers start at ``earliest``), so everything retained there is still to be read. A partition
    whose committed offset Kafka answered with an error (``None``) makes its topic's lag unknown: a
    guess from the earliest offset would report a backlog that may not exist.
    """
    lag: dict[str, int] = {}
    unknown: set[str] = set()
    for partition, end in latest.items():
        position = committed.get(partition, -1)
        if position is None:
            unknown.add(partition[0])
            continue
        if position < 0:
            position = earliest.get(partition, 0)
        lag[partition[0]] = lag.get(partition[0], 0) + max(0, end - position)
    return {topic: records for topic, records in lag.items() if topic not in unknown}, unknown


class GrowthTracker:
    """Lag is *growing* when, over a full window, it never got back down to where the window began and
    ends higher: the consumer is falling further behind, not just seeing a burst it then drains."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._history: dict[tuple[str, str], deque[tuple[float, int]]] = {}

    def observe(self, key: tuple[str, str], now: float, records: int) -> bool:
        history = self._history.setdefault(key, deque())
        history.append((now, records))
        # Keep the newest sample at or before the window's start as the baseline.
        while len(history) >= 2 and history[1][0] <= now - self.window_s:
            history.popleft()
        first_at, first = history[0]
        if first_at > now - self.window_s:
            return False
        return records > first and min(lag for _, lag in history) >= first

    def forget_all_but(self, keys: set[tuple[str, str]], groups: Collection[str] = ()) -> None:
        """Drops the history of groups or topics that are gone, so their series end; ``keys`` and every
        topic of ``groups`` (whose offsets were not read this time) are kept."""
        for key in set(self._history) - keys:
            if key[0] not in groups:
                del self._history[key]
