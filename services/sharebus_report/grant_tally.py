"""Grant applications answered within the deadline, per provider department. Pure: no Kafka.

An application counts in the period it was made in (``applied_at``), for the provider that must
answer it. Applications the bus answered by itself (``automatic``: unconditional classes are granted,
not-shared ones refused, at once) are not the provider's to answer and are left out. The answer is
the first decision the log shows (approved or rejected; ``decided_at``), judged against
``applied_at`` plus the deadline in working days (``sharebus_rules.grant_workflow``):

- on time: answered by the deadline;
- overdue: answered after it, or unanswered once it has passed (as of the report);
- pending: unanswered and the deadline not yet passed.

The grants topic is compacted: when a grant's approval was compacted away behind a later revocation,
the revocation's time is the only bound left on the answer, and it is used (the answer came no later).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sharebus_core.grants import Grant, GrantState
from sharebus_report.period import Period
from sharebus_rules.grant_workflow import DEFAULT_ANSWER_DEADLINE_WORKING_DAYS, add_working_days

_ANSWERS = frozenset({GrantState.APPROVED, GrantState.REJECTED, GrantState.REVOKED})


@dataclass(slots=True)
class GrantCounts:
    received: int = 0
    on_time: int = 0
    overdue: int = 0
    pending: int = 0


def _answered_at(history: list[Grant], as_of: dt.datetime) -> dt.datetime | None:
    times = [g.decided_at for g in history if g.state in _ANSWERS and g.decided_at is not None and g.decided_at < as_of]
    return min(times) if times else None


def tally_grants(
    events: Iterable[Grant],
    period: Period,
    as_of: dt.datetime,
    deadline_working_days: int = DEFAULT_ANSWER_DEADLINE_WORKING_DAYS,
    tz: dt.tzinfo | None = None,
) -> dict[str, GrantCounts]:
    """Per provider department; ``events`` are the verified grant events in log order. ``tz``: the calendar
    the working days are counted on, the grant service's (``BusSettings.grants_deadline_zone``)."""
    histories: dict[str, list[Grant]] = defaultdict(list)
    for grant in events:
        histories[grant.grant_id].append(grant)
    counts: dict[str, GrantCounts] = defaultdict(GrantCounts)
    for history in histories.values():
        first = history[0]
        if any(g.automatic for g in history) or first.applied_at not in period or first.applied_at >= as_of:
            continue
        tally = counts[first.provider]
        tally.received += 1
        deadline = add_working_days(first.applied_at, deadline_working_days, tz)
        answered = _answered_at(history, as_of)
        if answered is not None and answered <= deadline:
            tally.on_time += 1
        elif answered is not None or deadline <= as_of:
            tally.overdue += 1
        else:
            tally.pending += 1
    return dict(counts)
