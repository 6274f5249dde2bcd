"""Release windows: calendar arithmetic in the class's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sharebus_core.catalogue.models import Period, UpdateMode, UpdatePolicy
from sharebus_rules.periods import NotPeriodic, Window, next_window, nominal_length, window_containing

SHANGHAI = ZoneInfo("Asia/Shanghai")


def policy(period: Period, release_at: dt.time | None = None, timezone: str = "Asia/Shanghai") -> UpdatePolicy:
    return UpdatePolicy(mode=UpdateMode.PERIODIC, period=period, release_at=release_at, timezone=timezone)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("period", "release_at", "at", "start", "end"),
    [
        (Period.HOURLY, None, local(2026, 11, 22, 9, 59, 59), local(2026, 11, 22, 9), local(2026, 11, 22, 10)),
        (
            Period.HOURLY,
            dt.time(0, 30),
            local(2026, 11, 22, 9, 10),
            local(2026, 11, 22, 8, 30),
            local(2026, 11, 22, 9, 30),
        ),
        (Period.DAILY, dt.time(2, 0), local(2026, 11, 22, 1, 0), local(2026, 11, 21, 2), local(2026, 11, 22, 2)),
        (Period.DAILY, dt.time(2, 0), local(2026, 11, 22, 2, 0), local(2026, 11, 22, 2), local(2026, 11, 23, 2)),
        # 2026-11-22 is a Sunday: the weekly window began on Monday the 16th.
        (Period.WEEKLY, None, local(2026, 11, 22, 23), local(2026, 11, 16), local(2026, 11, 23)),
        (Period.WEEKLY, None, local(2026, 11, 23, 0), local(2026, 11, 23), local(2026, 11, 30)),
        (Period.MONTHLY, dt.time(6, 0), local(2026, 12, 1, 5), local(2026, 11, 1, 6), local(2026, 12, 1, 6)),
        (Period.MONTHLY, None, local(2026, 12, 15), local(2026, 12, 1), local(2027, 1, 1)),
    ],
)
def test_window_containing(
    period: Period, release_at: dt.time | None, at: dt.datetime, start: dt.datetime, end: dt.datetime
) -> None:
    window = window_containing(policy(period, release_at), at)
    assert (window.start, window.end) == (start, end)
    assert at in window


def test_a_utc_instant_falls_in_the_window_of_the_class_zone() -> None:
    # 18:30 UTC is 02:30 the next day in Shanghai: after that day's 02:00 release.
    window = window_containing(policy(Period.DAILY, dt.time(2, 0)), dt.datetime(2026, 11, 21, 18, 30, tzinfo=dt.UTC))
    assert window.start == local(2026, 11, 22, 2)


def test_windows_follow_each_other_without_gap() -> None:
    daily = policy(Period.MONTHLY)
    window = window_containing(daily, local(2026, 1, 31, 12))
    for _ in range(14):
        following = next_window(daily, window)
        assert following.start == window.end
        window = following
    assert window.start == local(2027, 3, 1)


def test_daylight_saving_zones_keep_wall_clock_release_times() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    daily = policy(Period.DAILY, dt.time(2, 30), "Europe/Berlin")
    window = window_containing(daily, dt.datetime(2026, 10, 24, 12, tzinfo=berlin))
    following = next_window(daily, window)
    assert (window.end.hour, following.start.hour, following.end.hour) == (2, 2, 2)
    # Clocks go back at 03:00 on 25 October 2026 in Berlin; 02:30 that day is its first occurrence,
    # so the window that follows it lasts 25 real hours.
    assert following.end.astimezone(dt.UTC) - following.start.astimezone(dt.UTC) == dt.timedelta(hours=25)


def test_realtime_classes_have_no_windows() -> None:
    with pytest.raises(NotPeriodic):
        window_containing(UpdatePolicy(mode=UpdateMode.REALTIME), dt.datetime.now(dt.UTC))


def test_nominal_lengths() -> None:
    assert nominal_length(policy(Period.HOURLY)) == dt.timedelta(hours=1)
    assert nominal_length(policy(Period.MONTHLY)) == dt.timedelta(days=31)
    assert Window(local(2026, 1, 1), local(2026, 1, 2)).window_id == "2026-01-01T00:00:00+08:00"


def test_after_spring_forward_windows_keep_agreeing_with_window_containing() -> None:
    # 2025-03-30 02:30 does not exist in Berlin. A window read back with a fixed UTC offset must still
    # be followed by the same window that window_containing gives for that instant.
    daily = policy(Period.DAILY, dt.time(2, 30), "Europe/Berlin")
    window = window_containing(daily, dt.datetime(2025, 3, 29, 12, tzinfo=dt.UTC))
    fixed = Window(
        dt.datetime.fromisoformat(window.start.isoformat()), dt.datetime.fromisoformat(window.end.isoformat())
    )
    following = next_window(daily, fixed)
    assert following == window_containing(daily, fixed.end)
    assert following.end == window_containing(daily, dt.datetime(2025, 3, 31, 12, tzinfo=dt.UTC)).start
