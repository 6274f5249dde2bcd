"""The conditional-share workflow as pure functions: applied -> approved | rejected; approved -> revoked | expired.

Every function takes the acting department and refuses, with ``GrantRefused``, what that department
may not do. Nothing here touches Kafka: the caller publishes the returned grant as the next event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pydantic import ValidationError

from sharebus_core.catalogue import Catalogue, ShareType
from sharebus_core.deadline_zone import deadline_zone
from sharebus_core.errors import SharebusError
from sharebus_core.grants import Grant, GrantState

DEFAULT_ANSWER_DEADLINE_WORKING_DAYS = 10


class GrantRefused(SharebusError, ValueError):
    """The action is not allowed; the message says why, in terms the acting department can act on."""


def _next(grant: Grant, **update: object) -> Grant:
    """The grant's next event: ``grant`` changed by ``update``, validated as every reader of the grants topic
    validates it. ``model_copy`` would validate nothing, and the caller signs what it returns: a value readers
    refuse (a blank reason, say) would be a signed event no reader can read, a grant closed for good."""
    try:
        return Grant.model_validate({**grant.model_dump(), **update})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise GrantRefused(f"grant {grant.grant_id} cannot be recorded so: {problems}") from exc


def _check_fields(catalogue: Catalogue, class_code: str, fields: Sequence[str], masked: Sequence[str]) -> None:
    known = catalogue.schema(class_code).field_names
    unknown = [f for f in (*fields, *masked) if f not in known]
    if unknown:
        raise GrantRefused(
            f"{', '.join(sorted(set(unknown)))} not field(s) of {class_code}; fields: {', '.join(known)}"
        )
    outside = [f for f in masked if f not in fields]
    if outside:
        raise GrantRefused(f"masked field(s) {', '.join(outside)} must also be requested fields")


def apply(
    catalogue: Catalogue,
    *,
    grant_id: str,
    acting_department: str,
    requester: str,
    consumer: str,
    data_class: str,
    purpose: str,
    scenario: str,
    fields: Sequence[str] = (),
    masked_fields: Sequence[str] = (),
    valid_until: dt.datetime | None = None,
    now: dt.datetime,
) -> Grant:
    """An application by the consumer's department. Unconditional classes are granted at once (without
    their sensitive fields); classes that are not shared are refused with their legal basis."""
    entry = catalogue.data_class(data_class)
    consumer_department = catalogue.department_of_system.get(consumer)
    if consumer_department is None:
        raise GrantRefused(f"unknown system {consumer!r}")
    if consumer_department != acting_department:
        raise GrantRefused(f"{acting_department} cannot apply for {consumer}: it belongs to {consumer_department}")
    if consumer_department == entry.provider:
        raise GrantRefused(f"{consumer} belongs to the provider {entry.provider}; it needs no grant for its own data")
    if not purpose.strip() or not scenario.strip():
        raise GrantRefused("an application must state its purpose and its usage scenario")
    schema_fields = catalogue.schema(data_class).field_names
    open_fields = tuple(f for f in schema_fields if f not in entry.sensitive_fields)
    requested = tuple(fields) or (open_fields if entry.share_type is ShareType.UNCONDITIONAL else schema_fields)
    if not requested:
        raise GrantRefused(f"every field of {data_class} is sensitive: name the fields the application is for")
    _check_fields(catalogue, data_class, requested, masked_fields)
    applied = Grant(
        grant_id=grant_id,
        data_class=data_class,
        provider=entry.provider,
        consumer=consumer,
        consumer_department=consumer_department,
        requester=requester,
        purpose=purpose,
        scenario=scenario,
        fields=requested,
        masked_fields=tuple(masked_fields),
        state=GrantState.APPLIED,
        applied_at=now,
        valid_until=valid_until,
    )
    decided = {"decided_at": now, "decided_by": entry.provider, "automatic": True}
    if entry.share_type is ShareType.NONE:
        return _next(
            applied, **decided, state=GrantState.REJECTED, reason=f"{data_class} is not shared: {entry.legal_basis}"
        )
    if entry.share_type is ShareType.UNCONDITIONAL:
        sensitive = [f for f in requested if f in entry.sensitive_fields]
        granted = tuple(f for f in requested if f not in entry.sensitive_fields)
        reason = f"unconditional share; sensitive fields not included: {', '.join(sensitive)}" if sensitive else None
        if not granted:
            return _next(applied, **decided, state=GrantState.REJECTED, reason=reason)
        return _next(
            applied,
            **decided,
            state=GrantState.APPROVED,
            reason=reason,
            fields=granted,
            masked_fields=tuple(f for f in masked_fields if f in granted),
        )
    return applied


def _provider_decides(grant: Grant, acting_department: str, action: str) -> None:
    if acting_department != grant.provider:
        raise GrantRefused(
            f"only the provider {grant.provider} may {action} grant {grant.grant_id}; {acting_department} cannot"
        )


def _four_eyes(grant: Grant, decider: str | None, action: str) -> None:
    # Whoever applied never decides on the same application, even as an approver of the provider.
    if decider is not None and decider == grant.requester:
        raise GrantRefused(f"{decider} applied for grant {grant.grant_id} and so may not {action} it (four eyes)")


def _adjusted(
    grant: Grant, fields: Sequence[str] | None, masked_fields: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields and masking the provider grants: at most what was requested, masking only granted fields."""
    granted = tuple(fields) if fields is not None else grant.fields
    masked = (
        tuple(masked_fields) if masked_fields is not None else tuple(f for f in grant.masked_fields if f in granted)
    )
    if not granted:
        raise GrantRefused("an approval must grant at least one field")
    beyond = [f for f in granted if f not in grant.fields]
    if beyond:
        raise GrantRefused(f"field(s) {', '.join(beyond)} were not requested; an approval may only narrow the fields")
    outside = [f for f in masked if f not in granted]
    if outside:
        raise GrantRefused(f"masked field(s) {', '.join(outside)} must also be granted fields")
    return granted, masked


def approve(
    grant: Grant,
    *,
    acting_department: str,
    now: dt.datetime,
    valid_until: dt.datetime | None = None,
    reason: str | None = None,
    fields: Sequence[str] | None = None,
    masked_fields: Sequence[str] | None = None,
    decider: str | None = None,
) -> Grant:
    """Approves an application, optionally narrowing its fields and changing its masking.

    ``decider`` is the person (or system) deciding; it may not be the application's requester."""
    _provider_decides(grant, acting_department, "approve")
    if grant.state is not GrantState.APPLIED:
        raise GrantRefused(f"grant {grant.grant_id} is {grant.state.value}; only an application can be approved")
    _four_eyes(grant, decider, "approve")
    until = valid_until or grant.valid_until
    if until is not None and until <= now:
        raise GrantRefused("the validity window must end in the future")
    granted, masked = _adjusted(grant, fields, masked_fields)
    return _next(
        grant,
        state=GrantState.APPROVED,
        decided_at=now,
        decided_by=acting_department,
        valid_until=until,
        # An approval needs no reason: a blank one is none (recorded as such, never as an empty text).
        reason=(reason.strip() or None) if reason is not None else None,
        fields=granted,
        masked_fields=masked,
        # The provider decided: whatever the application said, this grant is not the bus's own.
        automatic=False,
    )


def reject(grant: Grant, *, acting_department: str, now: dt.datetime, reason: str, decider: str | None = None) -> Grant:
    _provider_decides(grant, acting_department, "reject")
    _four_eyes(grant, decider, "reject")
    if grant.state is not GrantState.APPLIED:
        raise GrantRefused(f"grant {grant.grant_id} is {grant.state.value}; only an application can be rejected")
    if not reason.strip():
        raise GrantRefused("a rejection must give its reason")
    return _next(grant, state=GrantState.REJECTED, decided_at=now, decided_by=acting_department, reason=reason)


def revoke(grant: Grant, *, acting_department: str, now: dt.datetime, reason: str) -> Grant:
    _provider_decides(grant, acting_department, "revoke")
    if grant.effective_state(now) is not GrantState.APPROVED:
        raise GrantRefused(
            f"grant {grant.grant_id} is {grant.effective_state(now).value}; only an active grant can be revoked"
        )
    if not reason.strip():
        raise GrantRefused("a revocation must give its reason")
    return _next(grant, state=GrantState.REVOKED, decided_at=now, decided_by=acting_department, reason=reason)


def add_working_days(start: dt.datetime, days: int, tz: dt.tzinfo | None = None) -> dt.datetime:
    """``start`` plus ``days`` working days (Monday to Friday on the calendar of ``tz``, default the city's,
    ``sharebus_core.deadline_zone.DEFAULT_DEADLINE_TIMEZONE``; public holidays are not modelled), in
    ``start``'s own time zone."""
    current = start.astimezone(tz or deadline_zone()) if start.tzinfo is not None else start
    remaining = days
    while remaining > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current.astimezone(start.tzinfo) if start.tzinfo is not None else current


def is_overdue(
    grant: Grant,
    now: dt.datetime,
    deadline_working_days: int = DEFAULT_ANSWER_DEADLINE_WORKING_DAYS,
    tz: dt.tzinfo | None = None,
) -> bool:
    """An application the provider has not answered within the deadline (working days of ``tz``)."""
    return grant.state is GrantState.APPLIED and now > add_working_days(grant.applied_at, deadline_working_days, tz)


def working_days_left(
    grant: Grant,
    now: dt.datetime,
    deadline_working_days: int = DEFAULT_ANSWER_DEADLINE_WORKING_DAYS,
    tz: dt.tzinfo | None = None,
) -> int:
    """Working days (Monday to Friday) from today to the application's answer deadline, counted by
    date on the calendar of ``tz``; negative once it is overdue (-1 on the day it became so)."""
    zone = tz or deadline_zone()
    deadline = add_working_days(grant.applied_at, deadline_working_days, zone)
    today, last = _local_date(now, zone), _local_date(deadline, zone)
    if now <= deadline:
        return _working_dates_after(today, last)
    return -max(1, _working_dates_after(last, today))


def _local_date(moment: dt.datetime, zone: dt.tzinfo) -> dt.date:
    return moment.astimezone(zone).date() if moment.tzinfo is not None else moment.date()


def _working_dates_after(first: dt.date, last: dt.date) -> int:
    """How many working dates lie after ``first`` up to and including ``last``."""
    return sum(1 for n in range(1, (last - first).days + 1) if (first + dt.timedelta(days=n)).weekday() < 5)
