"""Periodic windows on time and overdue, from the release evidence in the audit trail. Pure.

A periodic class's window is **on time** when its batch held records: the router released it with
decisions (the audit events of mode ``periodic``) within ``grace`` of the window's end. It is
**overdue** when its end plus the grace has passed (as of the report) with no such release: the
provider published nothing for that window, so its subscribers got nothing (the "subtraction" the
assessment looks for). A window still within its grace is pending and not counted, and a window
that ended before the bus's audit trail begins (a bus started within the period) is not judged
overdue.

Windows belong to the period in which they end: ends in (start, end].
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sharebus_core.catalogue.models import UpdatePolicy
from sharebus_report.period import Period
from sharebus_rules.periods import Window, next_window, window_containing

_INSTANT = dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class WindowCounts:
    on_time: int = 0
    overdue: int = 0
    pending: int = 0


def released_window(policy: UpdatePolicy, released_at: dt.datetime) -> Window:
    """The window a release at ``released_at`` closed: the one before the window it happened in."""
    current = window_containing(policy, released_at)
    return window_containing(policy, current.start - _INSTANT)


def windows_ending_in(policy: UpdatePolicy, period: Period) -> Iterator[Window]:
    window = window_containing(policy, period.start - _INSTANT)
    while window.end <= period.end:
        if window.end > period.start:
            yield window
        window = next_window(policy, window)


def assess_windows(
    policy: UpdatePolicy,
    period: Period,
    as_of: dt.datetime,
    grace: dt.timedelta,
    released_ends: set[float],
    bus_began: dt.datetime | None = None,
) -> WindowCounts:
    """``released_ends``: the end instants (epoch seconds) of the windows released on time.

    ``bus_began``: when the audit trail begins, when the report read it whole from its first event (a
    bus younger than the period); a window that ended by then is not judged overdue: no provider could
    publish to a bus that did not exist yet. A window released on time still counts: a periodic record
    is audited only at its window's release, so the release can be the trail's first event while the
    bus held its records before. None: the bus is older than what was read.
    """
    on_time = overdue = pending = 0
    for window in windows_ending_in(policy, period):
        if window.end.timestamp() in released_ends:
            on_time += 1
        elif bus_began is not None and window.end <= bus_began:
            continue
        elif window.end + grace <= as_of:
            overdue += 1
        else:
            pending += 1
    return WindowCounts(on_time, overdue, pending)
