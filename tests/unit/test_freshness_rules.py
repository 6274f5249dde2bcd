"""Freshness assessment: overdue after the period plus grace (periodic) or the allowed silence (real-time)."""

from __future__ import annotations

import datetime as dt

from sharebus_core.catalogue import Catalogue, UpdateMode, load_catalogue
from sharebus_router.freshness import FreshnessTracker
from sharebus_rules.freshness import FreshnessPolicy, allowed_age, assess, credible
from tests.unit.fixtures import FIXTURE_CATALOGUE

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
POLICY = FreshnessPolicy(grace=dt.timedelta(hours=1), realtime_max_silence=dt.timedelta(hours=6))
STATS = "301001004/000001"  # daily
ENTERPRISE = "301001001/000001"  # real-time


def catalogue() -> Catalogue:
    return load_catalogue(FIXTURE_CATALOGUE)


def test_a_daily_class_may_be_a_day_and_the_grace_old() -> None:
    entry = catalogue().data_class(STATS)
    assert entry.mode is UpdateMode.PERIODIC
    assert allowed_age(entry, POLICY) == dt.timedelta(hours=25)
    fresh = assess(entry, NOW - dt.timedelta(hours=24, minutes=59), NOW, NOW, POLICY)
    assert not fresh.overdue
    late = assess(entry, NOW - dt.timedelta(hours=25, seconds=1), NOW, NOW, POLICY)
    assert late.overdue
    assert late.age == dt.timedelta(hours=25, seconds=1)


def test_a_realtime_class_is_overdue_after_the_allowed_silence() -> None:
    entry = catalogue().data_class(ENTERPRISE)
    assert not assess(entry, NOW - dt.timedelta(hours=5), NOW, NOW, POLICY).overdue
    assert assess(entry, NOW - dt.timedelta(hours=7), NOW, NOW, POLICY).overdue


def test_a_class_never_seen_is_as_old_as_the_watch_over_it() -> None:
    entry = catalogue().data_class(ENTERPRISE)
    young = assess(entry, None, NOW - dt.timedelta(minutes=5), NOW, POLICY)
    assert (young.age, young.overdue, young.last_record) == (dt.timedelta(minutes=5), False, None)
    assert assess(entry, None, NOW - dt.timedelta(days=2), NOW, POLICY).overdue


def test_a_clock_behind_the_record_gives_age_zero_not_negative() -> None:
    entry = catalogue().data_class(ENTERPRISE)
    assert assess(entry, NOW + dt.timedelta(seconds=3), NOW, NOW, POLICY).age == dt.timedelta(0)


def test_a_record_stamped_in_the_future_does_not_keep_its_class_fresh() -> None:
    # A record's timestamp is its producer's clock (CreateTime): a department whose clock runs a month
    # ahead would otherwise look on time for a month after its last record.
    clock = [NOW.timestamp()]
    tracker = FreshnessTracker(catalogue(), lambda: clock[0], POLICY)
    tracker.seed(
        {ENTERPRISE: (NOW + dt.timedelta(days=30)).timestamp(), STATS: (NOW - dt.timedelta(hours=1)).timestamp()}
    )
    clock[0] = (NOW + dt.timedelta(hours=7)).timestamp()
    report = {item.data_class: item for item in tracker.report()}
    assert (report[ENTERPRISE].last_record, report[ENTERPRISE].overdue) == (None, True)
    assert report[STATS].last_record == NOW - dt.timedelta(hours=1)  # a stamp in the past is taken as it is


def test_a_clock_a_minute_ahead_is_within_the_tolerance_a_month_is_not() -> None:
    now = NOW.timestamp()
    assert credible(now + 60, now) == now + 60
    assert credible((NOW + dt.timedelta(days=30)).timestamp(), now) is None
