"""The period a report covers: a quarter (``2026-Q4``), a month (``2026-11``) or a year (``2026``).

A period is a half-open interval [start, end) of local midnights in the bureau's time zone (a
report for Chongqing counts in China Standard Time, not in UTC). Pure: no clock, no Kafka.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sharebus_core.errors import SharebusError

# ASCII digits only: ``\d`` also takes other scripts' digits, which int() reads but which then stay in the
# label, and the label names the downloaded file (a header, which only Latin-1 can carry).
_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_YEAR = re.compile(r"^([0-9]{4})$")
# Python's dates: a period must start and end (the next period's start) within these years.
FIRST_YEAR, LAST_YEAR = dt.MINYEAR, dt.MAXYEAR


class BadPeriod(SharebusError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise BadPeriod("a period's bounds carry their time zone")
        if self.end <= self.start:
            raise BadPeriod(f"period {self.label}: it ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


def _month_start(year: int, month: int, zone: ZoneInfo) -> dt.datetime:
    index = year * 12 + month - 1
    if not FIRST_YEAR <= index // 12 <= LAST_YEAR:
        raise BadPeriod(
            f"the period is out of range: it must start and end within the years {FIRST_YEAR} to {LAST_YEAR}"
        )
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=zone)


def parse_period(text: str, timezone: str = "Asia/Shanghai") -> Period:
    """``2026-Q4``, ``2026-11`` or ``2026``, in ``timezone``; ``BadPeriod`` names what was expected."""
    zone = ZoneInfo(timezone)
    label = text.strip().upper()
    if quarter := _QUARTER.match(label):
        year, first = int(quarter.group(1)), (int(quarter.group(2)) - 1) * 3 + 1
        return Period(label, _month_start(year, first, zone), _month_start(year, first + 3, zone))
    if month := _MONTH.match(label):
        year, number = int(month.group(1)), int(month.group(2))
        if not 1 <= number <= 12:
            raise BadPeriod(f"{text!r}: there is no month {number}; give a month as 2026-11 (or 2026-Q4, 2026)")
        return Period(label, _month_start(year, number, zone), _month_start(year, number + 1, zone))
    if year_match := _YEAR.match(label):
        year = int(year_match.group(1))
        return Period(label, _month_start(year, 1, zone), _month_start(year + 1, 1, zone))
    raise BadPeriod(f"{text!r} is not a period: give a quarter (2026-Q4), a month (2026-11) or a year (2026)")
