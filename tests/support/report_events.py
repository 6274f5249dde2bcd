"""Events in the shapes the report reads, for tests that script a workload.

``audit_event`` is one event of the audit trail as the auditor writes it (the router's fact fields,
one decision, contract A's ``quality`` when given); ``dispute_event`` is contract B's dispute event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sharebus_core.topics import class_slug


def iso(at: dt.datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def quality(filled: int, fields: int, *failed: str) -> dict[str, Any]:
    return {"failed": list(failed), "filled": filled, "fields": fields}


def audit_event(
    at: dt.datetime,
    data_class: str,
    offset: int,
    consumer: str | None,
    decision: str = "deliver",
    *,
    provider: str = "AMR",
    mode: str = "realtime",
    reason: str | None = None,
    backfill: str | None = None,
    checked: dict[str, Any] | None = None,
    namespace: str = "sharebus",
    partition: int = 0,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "time": iso(at),
        "provider": provider,
        "data_class": data_class,
        "mode": mode,
        "key": f"k{offset}",
        "trace_id": None,
        "record_id": f"r-{class_slug(data_class)}-{offset}",
        "source": {"topic": f"{namespace}.src.{class_slug(data_class)}", "partition": partition, "offset": offset},
        "consumer": consumer,
        "grant_id": None,
        "decision": decision,
        "reason": reason,
        "payload_sha256": None,
    }
    if backfill is not None:
        event["backfill"] = backfill
    if checked is not None:
        event["quality"] = checked
    return event


def dispute_event(
    kind: str,
    dispute_id: str,
    at: dt.datetime,
    *,
    opened_at: dt.datetime,
    deadline: dt.datetime,
    provider: str = "AMR",
    consumer: str = "tax-levy",
    consumer_department: str = "TAX",
    data_class: str = "301001001/000001",
    record_id: str = "r-1",
) -> dict[str, Any]:
    return {
        "type": kind,
        "dispute_id": dispute_id,
        "record_id": record_id,
        "data_class": data_class,
        "provider": provider,
        "consumer": consumer,
        "consumer_department": consumer_department,
        "fields": ["name"],
        "reason": "the name is misspelt",
        "opened_at": iso(opened_at),
        "deadline": iso(deadline),
        "time": iso(at),
        "answer": "corrected" if kind in ("answered", "rejected", "corrected") else None,
        "correction_record_id": "r-2" if kind == "corrected" else None,
        "by": consumer if kind == "opened" else provider,
    }
