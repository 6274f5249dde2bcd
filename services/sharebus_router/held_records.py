"""Held records read back from the held topic: a periodic window's records (holding.py) and a backfill's
replay of a periodic class (backfill.py), each under where it was first read in its source topic."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from sharebus_core import headers as h
from sharebus_core.headers import HeaderList
from sharebus_router import audit_facts
from sharebus_router.routes import ClassRoute
from sharebus_rules.quality import Verdict

# Where a held record was read in its source topic: (topic, partition, offset).
Origin = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class HeldRecord:
    key: bytes | None
    value: bytes | None
    headers: HeaderList
    origin_topic: str
    origin_partition: int
    origin_offset: int


def held_records(messages: Iterable[Message], class_code: str, seen: set[Origin] | None = None) -> list[HeldRecord]:
    """The class's records among held messages, markers dropped, each source record once.

    A router that crashed before committing may have held a source record twice; both copies carry
    the same origin (the handler writes one on every held record), which says so. The record id
    cannot: a publisher may give distinct records the same id, and each of them is released.
    ``seen`` carries the origins across chunks of one window.
    """
    records = []
    seen = set() if seen is None else seen
    wanted = class_code.encode()
    for msg in messages:
        if msg.key() != wanted or msg.error() is not None:
            continue
        headers = h.header_list(msg.headers())
        meta = dict(headers)
        if h.MARKER in meta or h.ORIGIN not in meta:
            continue
        origin = json.loads(meta[h.ORIGIN])
        where: Origin = (origin["topic"], origin["partition"], origin["offset"])
        if where in seen:
            continue
        seen.add(where)
        key = bytes.fromhex(origin["key"]) if origin["key"] is not None else None
        kept = [(k, v) for k, v in headers if k != h.ORIGIN]
        records.append(HeldRecord(key, msg.value(), kept, *where))
    return records


def record_fact(
    route: ClassRoute, record: HeldRecord, decisions: list[dict[str, Any]], verdict: Verdict | None = None
) -> dict[str, Any]:
    """The audit fact of a record replayed from the log, under its origin in the source topic."""
    fact = audit_facts.record_fact(
        route.provider,
        route.data_class,
        route.mode,
        record.origin_topic,
        record.origin_partition,
        record.origin_offset,
        record.key,
        record.headers,
        decisions,
        route.level,
    )
    if verdict is not None:
        fact["quality"] = verdict.as_fact()
    return fact
