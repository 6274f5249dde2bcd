"""What the router tells the auditor: every decision made for each record.

Facts are buffered and sent as one message per source partition and batch (``AuditBuffer``); the
records' offsets are acknowledged only after their facts are sent, and Faust commits only
acknowledged offsets after flushing the producer, so no record is committed without its audit.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from sharebus_core import headers as h
from sharebus_core.headers import HeaderList

Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]


def payload_digest(payload: bytes | None) -> str | None:
    return hashlib.sha256(payload).hexdigest() if payload is not None else None


def decision(
    consumer: str, grant_id: str | None, delivered: bool, reason: str | None, payload: bytes | None = None
) -> dict[str, Any]:
    return {
        "consumer": consumer,
        "grant_id": grant_id,
        "decision": "deliver" if delivered else "deny",
        "reason": reason,
        "payload_sha256": payload_digest(payload) if delivered else None,
    }


def record_fact(
    provider: str,
    data_class: str,
    mode: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: HeaderList,
    decisions: list[dict[str, Any]],
) -> dict[str, Any]:
    meta = {name: raw for name, raw in headers if name in (h.TRACE_ID, h.RECORD_ID)}
    return {
        "time": time.time(),
        "provider": provider,
        "data_class": data_class,
        "mode": mode,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "trace_id": meta[h.TRACE_ID].decode("utf-8", "replace") if h.TRACE_ID in meta else None,
        "record_id": meta[h.RECORD_ID].decode("utf-8", "replace") if h.RECORD_ID in meta else None,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "decisions": decisions,
    }


def encode_batch(facts: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """One message per source partition, keyed ``topic:partition`` so its facts stay in order."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fact in facts:
        groups[f"{fact['source']['topic']}:{fact['source']['partition']}"].append(fact)
    return [
        (key.encode(), json.dumps({"records": records}, ensure_ascii=False, separators=(",", ":")).encode())
        for key, records in groups.items()
    ]


class AuditBuffer:
    """Holds facts and the events they belong to until the facts are sent; then the events are acked."""

    def __init__(self, topic: str, send: Send, max_records: int = 200) -> None:
        self.topic = topic
        self.send = send
        self.max_records = max_records
        self._facts: list[dict[str, Any]] = []
        self._events: list[Any] = []

    def add(self, fact: dict[str, Any] | None, event: Any) -> bool:
        """Returns True when the buffer is full and should be flushed."""
        if fact is not None:
            self._facts.append(fact)
        self._events.append(event)
        return len(self._events) >= self.max_records

    async def flush(self, ack: Callable[[Any], Awaitable[Any]]) -> None:
        # Swapped out before the first await, so records arriving meanwhile start a new batch.
        facts, events = self._facts, self._events
        self._facts, self._events = [], []
        for key, value in encode_batch(facts):
            await self.send(self.topic, key, value, [])
        for event in events:
            # None: a record Faust skipped and the router read again (skips.py); Faust acks it as a gap.
            if event is not None:
                await ack(event)
