"""Disputes for the "Disputes" page: contract B's events (``<ns>.disputes``, one JSON event per step,
keyed by dispute id) folded into one row per dispute, as a department sees them. The portal's
follower of the disputes topic feeds it (``put_message``); the rows are a cache of the log.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

from sharebus_core.catalogue import Catalogue
from sharebus_rules.disputes import ALLOWED_FROM, STATE_AFTER
from sharebus_rules.parties import current_parties

# A dispute is open until the provider answers or rejects it, or the bus refused to open it.
CLOSED = frozenset({"corrected", "rejected", "refused"})


@dataclass
class DisputeRow:
    dispute_id: str
    record_id: str
    data_class: str
    provider: str
    consumer: str
    consumer_department: str
    fields: list[str]
    reason: str
    opened_at: dt.datetime | None
    deadline: dt.datetime | None
    status: str
    answer: str | None = None
    correction_record_id: str | None = None
    history: list[tuple[str, str]] = field(default_factory=list)  # (type, time) of every step

    @property
    def open(self) -> bool:
        return self.status not in CLOSED

    def overdue(self, now: dt.datetime) -> bool:
        # As the gateway (``Dispute.is_past_deadline``): unanswered past its deadline. A dispute answered
        # in time is not overdue while its correction is to come.
        unanswered = self.status in ("opened", "overdue")
        return unanswered and (self.status == "overdue" or (self.deadline is not None and now > self.deadline))


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


# What a refused row shows for its class and provider. A refused claim was never opened with anyone:
# its provider has nothing to answer, and events written before the dispute service stopped doing so
# name the class and provider of another system's receipt, which the claimant must not learn.
UNKNOWN = "unknown"


def _parties(row: DisputeRow) -> tuple[str, ...]:
    # A refused claim is the claimant department's alone (the gateway's ``fold`` lists it to nobody).
    return (row.consumer_department,) if row.status == "refused" else (row.provider, row.consumer_department)


def _follows(status: str, kind: str) -> bool:
    """Whether step ``kind`` may follow a dispute whose last step was ``status`` (``rules.fold``'s rule)."""
    allowed = ALLOWED_FROM.get(kind)
    return allowed is not None and status in STATE_AFTER and STATE_AFTER[status] in allowed


def _new_row(catalogue: Catalogue, dispute_id: str, kind: str, event: dict[str, Any]) -> DisputeRow:
    refused = kind == "refused"
    data_class, consumer = str(event.get("data_class", "")), str(event.get("consumer", ""))
    # The parties as the catalogue names them now, as the gateway lists and answers the dispute.
    provider, consumer_department = current_parties(
        catalogue, data_class, str(event.get("provider", "")), consumer, str(event.get("consumer_department", ""))
    )
    return DisputeRow(
        dispute_id=dispute_id,
        record_id=str(event.get("record_id", "")),
        data_class=UNKNOWN if refused else data_class,
        provider=UNKNOWN if refused else provider,
        consumer=consumer,
        consumer_department=consumer_department,
        fields=[str(f) for f in event.get("fields") or []],
        reason=str(event.get("reason", "")),
        opened_at=_time(event.get("opened_at")),
        deadline=_time(event.get("deadline")),
        status=kind,
    )


class DisputeView:
    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._lock = threading.Lock()
        self._rows: dict[str, DisputeRow] = {}

    def put_message(self, msg: Message) -> None:
        """One record of the disputes topic; one that is not a JSON object is skipped (only the gateway writes it)."""
        try:
            event = json.loads(msg.value() or b"")
        except ValueError:
            return
        if isinstance(event, dict):
            self.put(event)

    def put(self, event: dict[str, Any]) -> None:
        """Folds one event in; an event that is not contract B's shape is ignored."""
        dispute_id, kind = event.get("dispute_id"), event.get("type")
        if not isinstance(dispute_id, str) or not isinstance(kind, str):
            return
        with self._lock:
            row = self._rows.get(dispute_id)
            if row is None and kind in ("opened", "refused"):
                row = self._rows[dispute_id] = _new_row(self._catalogue, dispute_id, kind, event)
            elif row is None or not _follows(row.status, kind):
                # As ``fold``, so the portal shows what the gateway does: a step that does not follow
                # (an escalation written while the provider answered, a second answer written at once)
                # changes nothing, and a refused claim never opens.
                return
            row.status = kind
            row.answer = event.get("answer") or row.answer
            row.correction_record_id = event.get("correction_record_id") or row.correction_record_id
            row.history.append((kind, str(event.get("time", ""))))

    def rows(self, department: str | None, now: dt.datetime) -> list[DisputeRow]:
        """A department's disputes (as provider or consumer; all for the bureau): overdue, open, then closed."""
        with self._lock:
            rows = [r for r in self._rows.values() if department is None or department in _parties(r)]
        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        return sorted(rows, key=lambda r: (not r.overdue(now), not r.open, r.deadline or far))
