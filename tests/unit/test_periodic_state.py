"""The hold-and-release state machine: batches follow the log, markers are idempotent."""

from __future__ import annotations

import datetime as dt

from sharebus_core.catalogue.models import Period, UpdateMode, UpdatePolicy
from sharebus_router.periodic import (
    HoldState,
    MarkerKind,
    Release,
    batch_id,
    due_marker,
    on_open,
    on_record,
    on_release,
)
from sharebus_rules.periods import window_containing

HOURLY = UpdatePolicy(mode=UpdateMode.PERIODIC, period=Period.HOURLY)
NOW = dt.datetime(2026, 11, 22, 1, 20, tzinfo=dt.UTC)
WINDOW = window_containing(HOURLY, NOW)


def test_the_first_record_opens_the_window_of_now_and_later_ones_change_nothing() -> None:
    state = on_record(None, 3, 17, HOURLY, NOW)
    assert state == HoldState(WINDOW, 3, 17)
    assert on_record(state, 3, 18, HOURLY, NOW) is None


def test_an_open_marker_starts_holding_after_itself_but_never_replaces_a_state() -> None:
    state = on_open(None, WINDOW, 2, 40)
    assert state == HoldState(WINDOW, 2, 41)
    assert on_open(state, WINDOW, 2, 90) is None


def test_the_timer_asks_for_an_open_marker_then_a_release_once_the_window_ended() -> None:
    assert due_marker(None, HOURLY, NOW) == (MarkerKind.OPEN, WINDOW)
    state = HoldState(WINDOW, 0, 0)
    assert due_marker(state, HOURLY, NOW) is None
    assert due_marker(state, HOURLY, WINDOW.end) == (MarkerKind.RELEASE, WINDOW)


def test_a_release_covers_the_records_between_the_markers_and_opens_the_next_window() -> None:
    state = HoldState(WINDOW, 1, 100)
    release = on_release(state, WINDOW.window_id, 250, HOURLY, WINDOW.end + dt.timedelta(seconds=1))
    assert release is not None
    assert (release.window, release.since, release.upto) == (WINDOW, 100, 250)
    assert release.after.since == 251
    assert release.after.partition == 1
    assert release.after.window.start == WINDOW.end


def test_a_repeated_or_replayed_marker_releases_nothing() -> None:
    state = HoldState(WINDOW, 0, 100)
    release = on_release(state, WINDOW.window_id, 250, HOURLY, WINDOW.end)
    assert isinstance(release, Release)
    assert on_release(release.after, WINDOW.window_id, 260, HOURLY, WINDOW.end) is None
    assert on_release(None, WINDOW.window_id, 260, HOURLY, WINDOW.end) is None


def test_after_a_long_absence_holding_resumes_in_the_window_of_now() -> None:
    state = HoldState(WINDOW, 0, 0)
    much_later = WINDOW.end + dt.timedelta(hours=5, minutes=10)
    release = on_release(state, WINDOW.window_id, 10, HOURLY, much_later)
    assert release is not None
    assert much_later in release.after.window


def test_state_survives_its_json_form_and_batch_ids_name_class_and_window() -> None:
    state = HoldState(WINDOW, 4, 9)
    assert HoldState.from_json(state.to_json()) == state
    assert batch_id("301001004/000001", WINDOW) == f"301001004.000001@{WINDOW.start.isoformat()}"


def test_a_retry_after_the_facts_releases_what_they_cover_not_up_to_its_own_marker() -> None:
    """The first release marker was at 250 and the facts of [100, 250) were kept with their plan; a send
    failed and a later marker (at 300) retries. The records held at 251..299 belong to the next window."""
    audited = HoldState(WINDOW, 1, 100, ("tax-levy|g-1",), 250)
    assert HoldState.from_json(audited.to_json()) == audited
    retry = on_release(audited, WINDOW.window_id, 300, HOURLY, WINDOW.end + dt.timedelta(seconds=1))
    assert retry is not None
    assert (retry.since, retry.upto) == (100, 250)
    assert retry.after.since == 251
    assert retry.after.audited is None
    assert retry.after.upto is None
    # Without kept facts, a retry releases up to its own marker, as before.
    plain = on_release(HoldState(WINDOW, 1, 100), WINDOW.window_id, 300, HOURLY, WINDOW.end)
    assert plain is not None
    assert plain.upto == 300
