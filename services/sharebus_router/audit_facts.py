"""What the router tells the auditor about one record: every decision made for it.

One fact per record (not per decision) keeps the router's extra sends to one per record; the
auditor expands it into one chained audit event per decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sharebus_core import headers as h
from sharebus_core.headers import HeaderList


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


def build_fact(
    provider: str,
    data_class: str,
    mode: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: HeaderList,
    decisions: list[dict[str, Any]],
) -> bytes:
    meta = {name: raw for name, raw in headers if name in (h.TRACE_ID, h.RECORD_ID)}
    fact = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "provider": provider,
        "data_class": data_class,
        "mode": mode,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "trace_id": meta[h.TRACE_ID].decode("utf-8", "replace") if h.TRACE_ID in meta else None,
        "record_id": meta[h.RECORD_ID].decode("utf-8", "replace") if h.RECORD_ID in meta else None,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "decisions": decisions,
    }
    return json.dumps(fact, ensure_ascii=False, separators=(",", ":")).encode()
