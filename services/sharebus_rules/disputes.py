"""Disputes (共享异议) as pure functions: opened -> answered -> corrected | rejected; opened -> overdue.

A consumer system disputes a record it received; the provider department answers within a deadline in
working days. Every step returns the next event (contract B: one JSON object per step on
``<ns>.disputes``, keyed by dispute id). Nothing here touches Kafka: the caller appends the event, and
every reader folds the log with ``fold`` to the same view.

- ``opened``: by the receiving system (whether it received the record is the caller's question: the
  audit trail answers it); ``refused`` instead when it did not receive it (never a dispute's state).
- ``answered``: the provider confirms; ``corrected`` follows once the correction is published.
- ``rejected``: the provider rejects, with a reason.
- ``overdue``: unanswered past the deadline; escalated to the bureau. The provider may still answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from sharebus_core.errors import SharebusError
from sharebus_rules.grant_workflow import add_working_days

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_WORKING_DAYS = 5

Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
EventType = Literal["opened", "refused", "answered", "corrected", "rejected", "overdue"]
EVENT_TYPES: tuple[EventType, ...] = ("opened", "refused", "answered", "corrected", "rejected", "overdue")


class DisputeRefused(SharebusError, ValueError):
    """The step is not allowed; the message says why, in terms the acting party can act on."""


class DisputeState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CORRECTED = "corrected"
    REJECTED = "rejected"
    OVERDUE = "overdue"


# The state a dispute is in after each event type (``refused`` opens nothing).
STATE_AFTER: Mapping[str, DisputeState] = {
    "opened": DisputeState.OPEN,
    "answered": DisputeState.ANSWERED,
    "corrected": DisputeState.CORRECTED,
    "rejected": DisputeState.REJECTED,
    "overdue": DisputeState.OVERDUE,
}
# Which states each event may follow. A provider may still answer an overdue dispute (late).
ALLOWED_FROM: Mapping[str, frozenset[DisputeState | None]] = {
    "opened": frozenset({None}),
    "answered": frozenset({DisputeState.OPEN, DisputeState.OVERDUE}),
    "rejected": frozenset({DisputeState.OPEN, DisputeState.OVERDUE}),
    "corrected": frozenset({DisputeState.ANSWERED}),
    "overdue": frozenset({DisputeState.OPEN}),
}


class DisputeEvent(BaseModel):
    """One step of one dispute (contract B). Every event repeats the dispute's facts, so any one
    event is readable alone (the report counts them without folding)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType
    dispute_id: Text
    record_id: Text
    data_class: Text
    provider: Text
    consumer: Text
    consumer_department: Text
    fields: tuple[Text, ...]
    reason: Text
    opened_at: AwareDatetime
    deadline: AwareDatetime
    time: AwareDatetime
    answer: Text | None = None
    correction_record_id: Text | None = None
    by: Text

    def encode(self) -> tuple[bytes, bytes]:
        return self.dispute_id.encode(), self.model_dump_json().encode()


class Dispute(BaseModel):
    """A dispute as the log says now: its latest event, its state, and when it was answered."""

    model_config = ConfigDict(frozen=True)

    latest: DisputeEvent
    state: DisputeState
    answered_at: dt.datetime | None = None

    @property
    def dispute_id(self) -> str:
        return self.latest.dispute_id

    def is_past_deadline(self, now: dt.datetime) -> bool:
        """Unanswered, and the deadline has passed (whether or not the ``overdue`` event is written yet)."""
        return self.state in (DisputeState.OPEN, DisputeState.OVERDUE) and now > self.latest.deadline

    def answered_on_time(self) -> bool:
        return self.answered_at is not None and self.answered_at <= self.latest.deadline


def deadline(
    opened_at: dt.datetime, working_days: int = DEFAULT_DEADLINE_WORKING_DAYS, tz: dt.tzinfo | None = None
) -> dt.datetime:
    """The answer deadline: ``working_days`` working days (Monday to Friday on the calendar of ``tz``, default
    the city's: ``sharebus_core.deadline_zone.DEFAULT_DEADLINE_TIMEZONE``) after opening."""
    if working_days < 1:
        raise DisputeRefused("the deadline must be at least one working day")
    return add_working_days(opened_at, working_days, tz)


def _check_claim(fields: Sequence[str], reason: str, schema_fields: Sequence[str], data_class: str) -> None:
    if not reason.strip():
        raise DisputeRefused("a dispute must give its reason")
    if not fields:
        raise DisputeRefused(f"name the disputed field(s) of {data_class}: {', '.join(schema_fields)}")
    unknown = sorted({f for f in fields if f not in schema_fields})
    if unknown:
        raise DisputeRefused(f"{', '.join(unknown)} not field(s) of {data_class}; fields: {', '.join(schema_fields)}")


def open_dispute(
    *,
    dispute_id: str,
    record_id: str,
    data_class: str,
    provider: str,
    consumer: str,
    consumer_department: str,
    fields: Sequence[str],
    reason: str,
    schema_fields: Sequence[str],
    received: bool,
    now: dt.datetime,
    working_days: int = DEFAULT_DEADLINE_WORKING_DAYS,
    tz: dt.tzinfo | None = None,
) -> DisputeEvent:
    """``opened`` when ``consumer`` received the record (as the audit trail proves), else ``refused``
    (recording the claim as made). Raises ``DisputeRefused`` for an opening claim that is not one (no
    reason, unknown fields); ``data_class`` and ``provider`` of a refused one may be ``unknown``."""
    if received:
        _check_claim(fields, reason, schema_fields, data_class)
    elif not reason.strip():
        raise DisputeRefused("a dispute must give its reason")
    return DisputeEvent(
        type="opened" if received else "refused",
        dispute_id=dispute_id,
        record_id=record_id,
        data_class=data_class,
        provider=provider,
        consumer=consumer,
        consumer_department=consumer_department,
        fields=tuple(dict.fromkeys(fields)),
        reason=reason.strip(),
        opened_at=now,
        deadline=deadline(now, working_days, tz),
        time=now,
        answer=None if received else f"{consumer} did not receive record {record_id}",
        by=consumer,
    )


def _provider_acts(dispute: Dispute, acting_department: str, action: str) -> None:
    if acting_department != dispute.latest.provider:
        raise DisputeRefused(
            f"only the provider {dispute.latest.provider} may {action} dispute {dispute.dispute_id}; "
            f"{acting_department} cannot"
        )


def _step(dispute: Dispute, kind: EventType, now: dt.datetime, by: str, **changes: str | None) -> DisputeEvent:
    if dispute.state not in ALLOWED_FROM[kind]:
        raise DisputeRefused(f"dispute {dispute.dispute_id} is {dispute.state.value}; it cannot be {kind} now")
    return dispute.latest.model_copy(update={"type": kind, "time": now, "by": by, **changes})


def answer(
    dispute: Dispute, *, acting_department: str, confirm: bool, text: str, now: dt.datetime, by: str
) -> DisputeEvent:
    """The provider's answer: ``answered`` (it confirms; a correction follows) or ``rejected`` (with its reason)."""
    action = "answer" if confirm else "reject"
    _provider_acts(dispute, acting_department, action)
    if not text.strip():
        missing = "an answer must say what the provider found" if confirm else "a rejection must give its reason"
        raise DisputeRefused(missing)
    return _step(dispute, "answered" if confirm else "rejected", now, by, answer=text.strip())


def corrected(
    dispute: Dispute, *, acting_department: str, correction_record_id: str, now: dt.datetime, by: str
) -> DisputeEvent:
    """The correction of a confirmed dispute is published, as record ``correction_record_id``."""
    _provider_acts(dispute, acting_department, "correct")
    return _step(dispute, "corrected", now, by, correction_record_id=correction_record_id)


def overdue(dispute: Dispute, *, now: dt.datetime, by: str) -> DisputeEvent | None:
    """The ``overdue`` escalation of an open dispute past its deadline; None when there is none to make."""
    if dispute.state is not DisputeState.OPEN or now <= dispute.latest.deadline:
        return None
    return _step(dispute, "overdue", now, by)


def fold(current: Dispute | None, event: DisputeEvent) -> Dispute | None:
    """The dispute after ``event``. An event that does not follow (a second ``overdue`` from another
    gateway, a step after the end) leaves the dispute as it was: every reader folds the same way."""
    if event.type == "refused":
        return current
    state = current.state if current is not None else None
    if state not in ALLOWED_FROM[event.type] or (current is not None and current.dispute_id != event.dispute_id):
        log.info("dispute %s: %s after %s ignored", event.dispute_id, event.type, state)
        return current
    answered_at = current.answered_at if current is not None else None
    if event.type in ("answered", "rejected"):
        answered_at = event.time
    return Dispute(latest=event, state=STATE_AFTER[event.type], answered_at=answered_at)


def due_for_escalation(disputes: Sequence[Dispute], now: dt.datetime) -> list[Dispute]:
    """The open disputes whose deadline has passed: each needs its ``overdue`` event."""
    return [d for d in disputes if d.state is DisputeState.OPEN and now > d.latest.deadline]


__all__ = [
    "DEFAULT_DEADLINE_WORKING_DAYS",
    "EVENT_TYPES",
    "Dispute",
    "DisputeEvent",
    "DisputeRefused",
    "DisputeState",
    "answer",
    "corrected",
    "deadline",
    "due_for_escalation",
    "fold",
    "open_dispute",
    "overdue",
]
