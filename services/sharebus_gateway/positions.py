"""Feed positions as event ids: ``<partition>:<next offset>`` for every partition, comma-separated.

An event's id is where the feed stands right after that event, on every partition of the delivery
topic, so resuming from it (SSE ``Last-Event-ID`` or ``?from=``) neither repeats that event nor
skips anything read after it on any partition.
"""

from __future__ import annotations

from collections.abc import Mapping

from sharebus_core.errors import SharebusError

EARLIEST = "earliest"
LATEST = "latest"
_MAX_PARTITIONS = 4096
# A Kafka offset is a signed 64-bit integer (19 digits); the cap keeps int() away from its own
# 4,300-digit limit, which raises a plain ValueError rather than BadPosition.
_MAX_DIGITS = 19


class BadPosition(SharebusError, ValueError):
    pass


def encode(positions: Mapping[int, int]) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(positions.items()))


def decode(text: str) -> dict[int, int]:
    """The positions in an event id; raises BadPosition saying what is wrong."""
    positions: dict[int, int] = {}
    parts = [p for p in text.strip().split(",") if p]
    if not parts:
        raise BadPosition("an event id lists at least one partition:offset")
    if len(parts) > _MAX_PARTITIONS:
        raise BadPosition(f"an event id lists at most {_MAX_PARTITIONS} partitions")
    for part in parts:
        partition, sep, offset = part.partition(":")
        if not sep or not _is_number(partition) or not _is_number(offset):
            raise BadPosition(f"{part[:40]!r} is not partition:offset (both non-negative integers)")
        if int(partition) in positions:
            raise BadPosition(f"partition {partition} is listed twice")
        positions[int(partition)] = int(offset)
    return positions


def _is_number(text: str) -> bool:
    # str.isdigit() alone accepts '²' and other Unicode digits that int() then refuses.
    return 0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()
