"""The marker tick looks only at periodic classes that may have something due: reading every class's
state each second held the router's event loop 1.7-5 s a second over the city's 1,076 periodic classes."""

from __future__ import annotations

import datetime as dt

from sharebus_router.holding import MarkerSchedule

T0 = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def test_a_class_is_skipped_until_its_window_ends() -> None:
    schedule = MarkerSchedule(["a", "b", "c"])
    assert schedule.due(T0, frozenset({0})) == ["a", "b", "c"]
    schedule.quiet("a", T0 + HOUR)
    assert schedule.due(T0, frozenset({0})) == ["b", "c"]
    assert schedule.due(T0 + HOUR - dt.timedelta(seconds=1), frozenset({0})) == ["b", "c"]
    # The window has ended: the release marker is due.
    assert schedule.due(T0 + HOUR, frozenset({0})) == ["a", "b", "c"]


def test_another_workers_class_waits_for_the_assignment_to_change() -> None:
    schedule = MarkerSchedule(["a", "b"])
    assert schedule.due(T0, frozenset({0})) == ["a", "b"]
    schedule.quiet("b", None)
    assert schedule.due(T0 + 100 * HOUR, frozenset({0})) == ["a"]
    # This worker now holds other held partitions: every class is looked at again.
    assert schedule.due(T0, frozenset({0, 1})) == ["a", "b"]


def test_a_changed_state_is_looked_at_on_the_next_tick() -> None:
    schedule = MarkerSchedule(["a"])
    schedule.due(T0, frozenset())
    schedule.quiet("a", T0 + HOUR)
    assert schedule.due(T0, frozenset()) == []
    schedule.changed("a")  # e.g. the window was released and the next one opened
    assert schedule.due(T0, frozenset()) == ["a"]
