"""Hash chaining of audit events, as pure functions.

Each event carries ``prev_hash`` (the ``hash`` of the event before it in its partition, or GENESIS
for the first) and its own ``hash``: SHA-256 over its canonical JSON without the ``hash`` field.
Altering an event breaks its own hash; removing or reordering events breaks the next ``prev_hash``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(event: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def seal(event: Mapping[str, Any], prev_hash: str) -> dict[str, Any]:
    """The event linked after ``prev_hash``, with its own hash."""
    linked = {**event, "prev_hash": prev_hash}
    linked["hash"] = event_hash(linked)
    return linked


@dataclass(frozen=True, slots=True)
class BrokenLink:
    partition: int
    offset: int
    problem: str

    def __str__(self) -> str:
        return f"partition {self.partition}, offset {self.offset}: {self.problem}"


def verify_partition(partition: int, events: Iterable[tuple[int, Mapping[str, Any] | None]]) -> BrokenLink | None:
    """Walks one partition's (offset, event) pairs in offset order; returns the first broken link."""
    expected_prev = GENESIS
    previous_offset: int | None = None
    for offset, event in events:
        if event is None:
            return BrokenLink(partition, offset, "the record is not an audit event (not JSON, or empty)")
        if event.get("hash") != event_hash(event):
            return BrokenLink(partition, offset, "its content does not match its hash (the event was altered)")
        if event.get("prev_hash") != expected_prev:
            after = f"offset {previous_offset}" if previous_offset is not None else "the start of the partition"
            return BrokenLink(
                partition,
                offset,
                f"its prev_hash does not match the event at {after} (an event was removed, inserted or reordered)",
            )
        expected_prev = str(event["hash"])
        previous_offset = offset
    return None
