"""Every place that counts a grant's working days counts them on the configured calendar.

1327f34 made the grant service count on ``SHAREBUS_GRANTS_DEADLINE_TIMEZONE``, but the router's
overdue-applications gauge, the portal's days left and the report's grant tally still counted on
Asia/Shanghai whatever the setting. Each is checked here with the injectable clock (``Clock`` and its
skew file) on either side of the date boundary between UTC and Chongqing (UTC+8), under the bus-wide
``SHAREBUS_DEADLINE_TIMEZONE`` and under the grants' own setting, which still wins.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from sharebus_core.catalogue import load_catalogue
from sharebus_core.clock import Clock
from sharebus_core.deadline_zone import deadline_zone
from sharebus_core.grants import Grant, GrantState
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_disputes.settings import DisputeSettings
from sharebus_portal import inbox_views
from sharebus_report import build
from sharebus_report.period import parse_period
from sharebus_router.grant_metrics import GrantCollector
from sharebus_rules.grant_workflow import approve
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.test_grant_workflow import application
from tests.unit.test_portal_pages import PENALTY, Client, grants_log, portal_app, state  # noqa: F401 - the fixture

UTC = dt.UTC
# 17:00 UTC on Thursday 19 November 2026 is 01:00 on Friday 20 November in Chongqing: with one working
# day the application is due at 17:00 UTC on Friday on UTC's calendar, at 01:00 on Monday in Chongqing.
THURSDAY_EVENING_UTC = dt.datetime(2026, 11, 19, 17, 0, tzinfo=UTC)
SATURDAY_NOON_UTC = dt.datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # 20:00 on Saturday in Chongqing
# 09:00 UTC on Friday 20 November is 17:00 there; 17:00 UTC on Sunday 22 November is Monday 01:00 there.
FRIDAY_MORNING_UTC = dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SUNDAY_EVENING_UTC = dt.datetime(2026, 11, 22, 17, 0, tzinfo=UTC)


class Moment:
    """The bus's injectable clock, moved by its skew file."""

    def __init__(self, tmp_path: Path) -> None:
        self.skew = tmp_path / "clock-skew"
        self.clock = Clock(self.skew)

    def at(self, moment: dt.datetime) -> Moment:
        self.skew.write_text(str(moment.timestamp() - time.time()))
        self.clock.refresh()
        return self

    def now(self) -> dt.datetime:
        return self.clock.now()


@pytest.fixture
def utc_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREBUS_DEADLINE_TIMEZONE", "UTC")


def overdue_gauge(applied: Grant, moment: Moment) -> float | None:
    registry = CollectorRegistry()
    # Built as the router's app.py builds it: the days only, the calendar from the setting.
    registry.register(
        GrantCollector(lambda: [applied], moment.now, 1, catalogue=lambda: load_catalogue(FIXTURE_CATALOGUE))
    )
    return registry.get_sample_value("sharebus_grant_applications_overdue", {"provider": applied.provider})


@pytest.mark.parametrize("variable", ["SHAREBUS_DEADLINE_TIMEZONE", "SHAREBUS_GRANTS_DEADLINE_TIMEZONE"])
def test_the_routers_overdue_gauge_counts_on_the_configured_calendar(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = application(load_catalogue(FIXTURE_CATALOGUE), now=THURSDAY_EVENING_UTC)
    moment = Moment(tmp_path).at(SATURDAY_NOON_UTC)
    # The city's calendar (the default): Monday has not begun in Chongqing, nothing is overdue.
    assert overdue_gauge(applied, moment) is None
    monkeypatch.setenv(variable, "UTC")
    assert overdue_gauge(applied, moment) == 1
    assert overdue_gauge(applied, moment.at(FRIDAY_MORNING_UTC)) is None  # before Friday's end in UTC


def test_the_grants_own_setting_wins_over_the_bus_wide_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREBUS_DEADLINE_TIMEZONE", "UTC")
    monkeypatch.setenv("SHAREBUS_GRANTS_DEADLINE_TIMEZONE", "Asia/Shanghai")
    settings = BusSettings()
    assert settings.grants_deadline_zone == deadline_zone("Asia/Shanghai")
    assert settings.disputes_deadline_zone == deadline_zone("UTC") == DisputeSettings().deadline_zone
    monkeypatch.setenv("SHAREBUS_DEADLINE_TIMEZONE", "Moon/Tranquility")
    with pytest.raises(ValidationError, match="unknown time zone"):
        BusSettings()


def test_the_portals_days_left_count_on_the_configured_calendar(
    utc_deadlines: None,
    portal_app: tuple[FastAPI, Client],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    app, client = portal_app
    bureau = client("bureau")  # the portal is built when its first client starts it
    portal, moment = state(app), Moment(tmp_path).at(FRIDAY_MORNING_UTC)
    grants = grants_log(app)
    grants.clock = moment.now
    applied = grants.apply(
        department="TAX", requester="t", consumer="tax-levy", data_class=PENALTY, purpose="p", scenario="s"
    )
    moment.at(SUNDAY_EVENING_UTC)
    # Due Friday 4 December. Monday 01:00 in Chongqing (9 left there), still Sunday in UTC: 10 left.
    assert inbox_views.pending(portal, "AMR") == [(applied, 10)]
    assert grants.days_left(applied) == 10
    # Tuesday 01:00 in Chongqing, Monday 17:00 UTC, after the deadline: one working day overdue in UTC
    # (two in Chongqing), as the bureau's overdue list says.
    moment.at(dt.datetime(2026, 12, 7, 17, 0, tzinfo=UTC))
    page = bureau.get("/bureau").text
    row = re.search(rf'/grants/{applied.grant_id}">.*?<td>(-?\d+)</td></tr>', page)
    assert row is not None, page
    assert row.group(1) == "1"


def test_the_reports_grant_tally_counts_on_the_configured_calendar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    applied = application(catalogue, now=THURSDAY_EVENING_UTC)
    answered = approve(applied, acting_department="AMR", now=SATURDAY_NOON_UTC)
    # No Kafka: the report reads only these grant events (and an empty trail).
    monkeypatch.setattr(build, "read_grant_events", lambda *_args: [applied, answered])
    monkeypatch.setattr(build, "stream_events", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(build, "read_from_its_start", lambda *_args: False)

    def tally(**rules: Any) -> tuple[int, int]:
        report = build.build_report(
            None,  # type: ignore[arg-type]
            TopicNames("ns"),
            catalogue,
            parse_period("2026-11"),
            verifier=None,  # type: ignore[arg-type]
            now=dt.datetime(2027, 3, 1, tzinfo=UTC),
            rules=build.Rules(grant_deadline_working_days=1, **rules),
        )
        amr = report.department("AMR")
        return amr.grants_on_time, amr.grants_overdue

    # Answered at 20:00 on Saturday in Chongqing: before Monday there, on time; after Friday's end in UTC.
    assert tally() == (1, 0)
    monkeypatch.setenv("SHAREBUS_DEADLINE_TIMEZONE", "UTC")
    assert tally() == (0, 1)
    assert tally(grant_deadline_zone=deadline_zone("Asia/Shanghai")) == (1, 0)
    assert answered.state is GrantState.APPROVED
