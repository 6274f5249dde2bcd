"""Release windows of periodic data classes: pure calendar arithmetic in the class's time zone.

A window runs from one release time to the next. A daily class released at 02:00 covers
[02:00 yesterday, 02:00 today); a weekly class is released on Mondays and a monthly one on the 1st,
both at ``release_at``; an hourly class at ``release_at``'s minute past every hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sharebus_core.catalogue.models import Period, UpdatePolicy
from sharebus_core.errors import SharebusError

# Nominal lengths, for freshness: a monthly provider may be 31 days apart and still on time.
NOMINAL_LENGTH = {
    Period.HOURLY: dt.timedelta(hours=1),
    Period.DAILY: dt.timedelta(days=1),
    Period.WEEKLY: dt.timedelta(days=7),
    Period.MONTHLY: dt.timedelta(days=31),
}


class NotPeriodic(SharebusError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open interval [start, end) of aware datetimes in the class's time zone."""

    start: dt.datetime
    end: dt.datetime

    @property
    def window_id(self) -> str:
        return self.start.isoformat()

    def __contains__(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


def _period(policy: UpdatePolicy) -> Period:
    if policy.period is None:
        raise NotPeriodic("a real-time class has no release windows")
    return policy.period


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _local(naive: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    # Wall-clock arithmetic, then the zone's offset for that wall time (correct across DST changes).
    return naive.replace(tzinfo=zone)


def _boundary_at_or_before(period: Period, release: dt.time, local: dt.datetime) -> dt.datetime:
    """The latest release boundary (naive wall time) not after ``local`` (naive wall time)."""
    if period is Period.HOURLY:
        candidate = local.replace(minute=release.minute, second=release.second, microsecond=0)
        return candidate if candidate <= local else candidate - dt.timedelta(hours=1)
    candidate = dt.datetime.combine(local.date(), release)
    if period is Period.DAILY:
        return candidate if candidate <= local else candidate - dt.timedelta(days=1)
    if period is Period.WEEKLY:
        candidate -= dt.timedelta(days=candidate.weekday())
        return candidate if candidate <= local else candidate - dt.timedelta(days=7)
    candidate = dt.datetime.combine(local.date().replace(day=1), release)
    return candidate if candidate <= local else dt.datetime.combine(_add_months(candidate.date(), -1), release)


def _next_boundary(period: Period, boundary: dt.datetime) -> dt.datetime:
    if period is Period.HOURLY:
        return boundary + dt.timedelta(hours=1)
    if period is Period.DAILY:
        return boundary + dt.timedelta(days=1)
    if period is Period.WEEKLY:
        return boundary + dt.timedelta(days=7)
    return dt.datetime.combine(_add_months(boundary.date(), 1), boundary.time())


def window_containing(policy: UpdatePolicy, at: dt.datetime) -> Window:
    """The window ``at`` (an aware datetime) falls in."""
    period = _period(policy)
    zone = ZoneInfo(policy.timezone)
    release = policy.release_at or dt.time(0, 0)
    local = at.astimezone(zone).replace(tzinfo=None)
    start = _boundary_at_or_before(period, release, local)
    return Window(_local(start, zone), _local(_next_boundary(period, start), zone))


def next_window(policy: UpdatePolicy, window: Window) -> Window:
    """The window that begins where ``window`` ends, computed from the instant, so that a window read
    back with a fixed UTC offset still agrees with ``window_containing`` after a DST change."""
    return window_containing(policy, window.end)


def nominal_length(policy: UpdatePolicy) -> dt.timedelta:
    return NOMINAL_LENGTH[_period(policy)]
