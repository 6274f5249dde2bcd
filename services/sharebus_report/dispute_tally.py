"""Disputes received, answered on time, corrected and overdue, per department. Pure: no Kafka.

Reads contract B's events (``<ns>.disputes``, one JSON object per step). A dispute counts in the
period it was opened in (``opened_at``), for the provider department that must answer it, and as
raised for the consumer's department. Judged as of the report's cut:

- answered on time: the provider's first answer (``answered`` or ``rejected``) by the ``deadline``;
- overdue: answered after the deadline, or unanswered once it has passed (an ``overdue`` event
  is not needed for that, nor is one before the deadline believed);
- corrected: a ``corrected`` event (the correction was published);
- pending: none of the above yet, within the deadline.

``refused`` disputes (the system never received the record) never opened, and count for nobody but
the consumer's department's ``refused``. An event that is not a readable contract-B event is skipped
and counted.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sharebus_report.period import Period

_ANSWERS = frozenset({"answered", "rejected"})


@dataclass(slots=True)
class DisputeCounts:
    received: int = 0
    on_time: int = 0
    overdue: int = 0
    corrected: int = 0
    pending: int = 0
    raised: int = 0
    refused: int = 0


@dataclass(slots=True)
class DisputeTally:
    departments: dict[str, DisputeCounts] = field(default_factory=lambda: defaultdict(DisputeCounts))
    events: int = 0
    skipped: int = 0


def _time(event: Mapping[str, Any], name: str) -> dt.datetime | None:
    raw = event.get(name)
    if not isinstance(raw, str):
        return None
    try:
        at = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _readable(event: Mapping[str, Any]) -> bool:
    texts = ("type", "dispute_id", "provider", "consumer_department")
    return all(isinstance(event.get(name), str) for name in texts) and all(
        _time(event, name) is not None for name in ("opened_at", "deadline", "time")
    )


def _judge(counts: DisputeCounts, steps: list[Mapping[str, Any]], deadline: dt.datetime, as_of: dt.datetime) -> None:
    answers = [t for s in steps if s["type"] in _ANSWERS and (t := _time(s, "time")) is not None]
    answered = min(answers) if answers else None
    if answered is not None and answered <= deadline:
        counts.on_time += 1
    elif answered is not None or deadline <= as_of:
        counts.overdue += 1
    else:
        counts.pending += 1
    if any(s["type"] == "corrected" for s in steps):
        counts.corrected += 1


def tally_disputes(events: Iterable[Mapping[str, Any]], period: Period, as_of: dt.datetime) -> DisputeTally:
    """``events``: the disputes topic's values, in log order (one partition's order per dispute)."""
    tally = DisputeTally()
    steps: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        if not _readable(event):
            tally.skipped += 1
            continue
        at = _time(event, "time")
        if at is None or at >= as_of:
            continue
        tally.events += 1
        steps[event["dispute_id"]].append(event)
    for history in steps.values():
        first = history[0]
        opened_at, deadline = _time(first, "opened_at"), _time(first, "deadline")
        if opened_at is None or deadline is None or opened_at not in period:
            continue
        consumer_side = tally.departments[first["consumer_department"]]
        if any(s["type"] == "refused" for s in history):
            consumer_side.refused += 1
            continue
        if not any(s["type"] == "opened" for s in history):
            continue
        consumer_side.raised += 1
        _judge(tally.departments[first["provider"]], history, deadline, as_of)
    return tally
