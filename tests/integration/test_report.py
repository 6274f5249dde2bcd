"""The assessment report on the real broker: a scripted workload over the fixture's demo departments (AMR
provides, TAX, PSB and HRSS consume) gives exactly the expected numbers, in the HTML and the XLSX, and the
HTML report shows its charts in a real browser without a console error."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from selenium import webdriver
from selenium.webdriver.common.by import By

from sharebus_cli.children import Child
from sharebus_cli.main import main as cli
from sharebus_core.audit_fact import AuditFact, FactDecision
from sharebus_grants import GrantService
from sharebus_provision import TopicSpec, ensure_topics
from sharebus_report import Period, build_report, parse_period
from sharebus_report.model import DEPARTMENT_COLUMNS
from sharebus_report.sources import read_from_its_start
from sharebus_rules.quality import is_filled
from tests.integration.conftest import Bus, ClockedBus
from tests.integration.test_periodic import approve_roster_grant, held, roster
from tests.support.audit_trail import trail_events
from tests.support.auditor import start_auditor
from tests.support.browser import console_errors, save_screenshot
from tests.support.kafka import eventually
from tests.support.keys import control_keys, keys_in_env
from tests.support.records import PENALTY, STATS, enterprise, penalty, publish_enterprises, publish_records, stats
from tests.support.report_events import dispute_event, quality

ENTERPRISE, INSPECTION, ROSTER = "301001001/000001", "301001003/000001", "301001005/000001"
GRACE = dt.timedelta(hours=1)


@pytest.fixture
def auditor(bus: Bus, tmp_path: Path) -> Iterator[Child]:
    service = start_auditor(bus.services["auditor"], bus.namespace, tmp_path)
    yield service
    service.stop()


@pytest.fixture
def clocked_auditor(clocked: ClockedBus, tmp_path: Path) -> Iterator[Child]:
    service = start_auditor(clocked.bus.services["auditor"], clocked.bus.namespace, tmp_path / "auditor")
    yield service
    service.stop()


def month_of(at: dt.datetime) -> Period:
    return parse_period(at.astimezone(parse_period("2026").start.tzinfo).strftime("%Y-%m"))


def audit_events(bus: Bus, expected: int) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        return trail_events(bus.access, bus.topics.audit)

    return eventually(read, lambda events: len(events) >= expected, timeout_s=60)


def filled_fields(bus: Bus, published: list[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
    """The fields the published records filled, and the fields their classes declare (completeness's terms)."""
    filled = fields = 0
    for code, record in published:
        names = bus.catalogue.schema(code).field_names
        filled += sum(is_filled(record.get(name)) for name in names)
        fields += len(names)
    return filled, fields


def plant_quality_facts(bus: Bus, first_at: dt.datetime) -> None:
    """Two facts as contract A's router writes them: a record rejected for quality, one delivered with a flag.

    The rejection is dated ``first_at``: this test's bus is minutes old, and a report judges a bus only on the
    windows since its trail's first event, so that event is dated back to the period's start.
    """
    topic = bus.topics.source(ENTERPRISE)
    rejected = AuditFact(
        mode="realtime",
        time=first_at.timestamp(),
        source={"topic": topic, "partition": 0, "offset": 1000},
        decisions=(FactDecision(None, "deny", "quality:uscc:check_digit"),),
        partition_key=f"{topic}:0",
        provider="AMR",
        data_class=ENTERPRISE,
        extra={"quality": quality(5, 5, "uscc:check_digit")},
    )
    flagged = AuditFact(
        mode="realtime",
        source={"topic": topic, "partition": 0, "offset": 1001},
        decisions=(FactDecision("tax-levy", "deliver"),),
        partition_key=f"{topic}:0",
        provider="AMR",
        data_class=ENTERPRISE,
        extra={"quality": quality(3, 4)},
    )
    producer = bus.access.producer({"enable.idempotence": True})
    for fact in (rejected, flagged):
        key, value = fact.encode()
        producer.produce(bus.topics.audit_facts, key=key, value=value)
    assert producer.flush(10) == 0


def grants_workflow(bus: Bus) -> None:
    """Three applications to AMR: one approved, one rejected, one left pending; one unconditional (automatic)."""
    grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())

    def apply(data_class: str, purpose: str, department: str = "TAX", consumer: str = "tax-levy") -> str:
        made = grants.apply(
            department=department,
            requester="officer Li",
            consumer=consumer,
            data_class=data_class,
            purpose=purpose,
            scenario="annual rating",
        )
        return made.grant_id

    grants.approve(apply(PENALTY, "tax credit rating"), department="AMR")
    grants.reject(apply(PENALTY, "a second look"), department="AMR", reason="one grant is enough")
    apply(ROSTER, "inspection planning")
    apply(ENTERPRISE, "social insurance checks", department="HRSS", consumer="hrss-si")


def plant_disputes(bus: Bus, now: dt.datetime) -> None:
    """Contract B's events: one answered on time and corrected, one overdue, one pending, one refused."""
    ensure_topics(bus.access, [TopicSpec(bus.topics.disputes, 3)])
    minutes = [now - dt.timedelta(minutes=m) for m in range(6)]
    later = now + dt.timedelta(days=5)
    events = [
        dispute_event("opened", "d1", minutes[5], opened_at=minutes[5], deadline=later),
        dispute_event("answered", "d1", minutes[4], opened_at=minutes[5], deadline=later),
        dispute_event("corrected", "d1", minutes[3], opened_at=minutes[5], deadline=later),
        dispute_event("opened", "d2", minutes[5], opened_at=minutes[5], deadline=minutes[2]),
        dispute_event("overdue", "d2", minutes[1], opened_at=minutes[5], deadline=minutes[2]),
        dispute_event("opened", "d3", minutes[1], opened_at=minutes[1], deadline=later),
        dispute_event(
            "refused",
            "d4",
            minutes[1],
            opened_at=minutes[1],
            deadline=later,
            consumer="psb-case",
            consumer_department="PSB",
        ),
    ]
    producer = bus.access.producer({"enable.idempotence": True})
    for event in events:
        producer.produce(bus.topics.disputes, key=event["dispute_id"].encode(), value=json.dumps(event).encode())
    assert producer.flush(10) == 0


def judged_windows(
    start: dt.datetime,
    as_of: dt.datetime,
    first_end: dt.timedelta,
    step: dt.timedelta,
    after: dt.datetime | None = None,
) -> int:
    """Windows ending at start + first_end + k * step (k >= 0) whose end plus the grace has passed, and
    that end after ``after`` (when the bus's audit trail begins) if given."""
    count, end = 0, start + first_end
    while end + GRACE <= as_of:
        count, end = count + int(after is None or end > after), end + step
    return count


def test_the_report_of_a_scripted_period_has_exactly_the_expected_numbers(
    bus: Bus, auditor: Child, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser: webdriver.Chrome
) -> None:
    period = month_of(dt.datetime.now(dt.UTC))
    inspections = [{"uscc": f"I{i}", "note": "n", "seq": i} for i in range(2)]
    publish_enterprises(bus.settings, range(6))  # 6 records, each to tax-levy and psb-case
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(3)))  # denied to tax-levy: no grant
    publish_records(bus.settings, INSPECTION, inspections)
    published = [
        *((ENTERPRISE, enterprise(seq)) for seq in range(6)),
        *((PENALTY, penalty(seq)) for seq in range(3)),
        *((INSPECTION, record) for record in inspections),
    ]
    plant_quality_facts(bus, period.start + dt.timedelta(minutes=1))
    assert len(audit_events(bus, 12 + 3 + 2 + 2)) == 19
    grants_workflow(bus)
    plant_disputes(bus, dt.datetime.now(dt.UTC))

    now = dt.datetime.now(dt.UTC)
    report = build_report(bus.access, bus.topics, bus.catalogue, period, verifier=control_keys().verifier, now=now)
    amr, tax, psb, hrss = (report.department(code) for code in ("AMR", "TAX", "PSB", "HRSS"))
    assert (amr.classes_promised, amr.classes_published) == (5, 3)  # the periodic classes were never released
    assert (amr.records_provided, amr.calls_served, amr.denials_caused) == (6 + 3 + 2 + 2, 12 + 1, 3 + 2 + 1)
    # The router judges every record it decodes (contract A): the 11 published, which break no rule (the fixture
    # classes declare none) and fill what the test filled, plus the 2 planted facts (8 of 9 fields, 1 of 2 valid).
    filled, fields = filled_fields(bus, published)
    assert (amr.quality_records, amr.completeness, amr.validity) == (11 + 2, (filled + 8) / (fields + 9), 12 / 13)
    assert (amr.disputes_received, amr.disputes_on_time, amr.disputes_overdue, amr.disputes_corrected) == (3, 1, 1, 1)
    assert (amr.grants_received, amr.grants_on_time, amr.grants_overdue) == (3, 2, 0)
    # The trail was read from its first event, dated a minute into the period: every window ending after it counts.
    assert read_from_its_start(bus.access, bus.topics.audit, period.start)
    hourly = judged_windows(period.start, now, dt.timedelta(hours=1), dt.timedelta(hours=1))
    daily = judged_windows(period.start, now, dt.timedelta(hours=2), dt.timedelta(days=1))
    assert (amr.windows_on_time, amr.windows_overdue) == (0, hourly + daily)
    assert (tax.records_consumed, tax.calls_received, tax.denials_received, tax.disputes_raised) == (7, 7, 3, 3)
    assert (psb.records_consumed, psb.calls_received, psb.denials_received) == (6, 6, 2)
    assert (hrss.records_consumed, hrss.calls_received, hrss.denials_received) == (0, 0, 0)
    assert [row.code for row in report.classes if not row.published] == ["301001004/000001", ROSTER]
    assert amr.rank == 1
    assert report.sources.audit_events == 19

    # The operator's command writes both files; the workbook has the same numbers.
    bus.use_in_env(monkeypatch)
    keys_in_env(monkeypatch)
    out = tmp_path / "reports"
    assert cli(["report", "--period", period.label, "--out", str(out)]) == 0
    book = load_workbook(out / f"report-{period.label}.xlsx")
    sheet = book["Departments"]
    headings = [c.value for c in sheet[1]]
    assert headings == [c.heading for c in DEPARTMENT_COLUMNS]
    rows = {
        row[1].value: {h: c.value for h, c in zip(headings, row, strict=True)} for row in sheet.iter_rows(min_row=2)
    }
    assert rows["AMR"]["Records provided"] == 13
    assert rows["AMR"]["Calls served"] == 13
    assert rows["AMR"]["Classes published"] == 3
    assert rows["AMR"]["Validity"] == pytest.approx(12 / 13)
    assert rows["AMR"]["Disputes answered on time"] == 1
    assert rows["AMR"]["Applications answered in time"] == 2
    assert rows["TAX"]["Records consumed"] == 7
    assert rows["PSB"]["Denials received"] == 2
    assert rows["AMR"]["Rank"] == 1
    assert rows["TAX"]["Score"] is None

    # The HTML in a real browser: it loads, logs no error, and its five charts are drawn.
    page = out / f"report-{period.label}.html"
    browser.get(page.as_uri())
    assert browser.find_element(By.TAG_NAME, "h1").text.endswith(period.label)
    charts = browser.find_elements(By.CSS_SELECTOR, "img.chart")
    assert len(charts) == 5
    for chart in charts:
        drawn = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth;", chart)
        assert drawn, chart.get_attribute("alt")
        assert chart.size["width"] > 100
        assert chart.size["height"] > 50
    cell = browser.find_element(By.CSS_SELECTOR, 'tr[data-department="AMR"] td[data-key="records_provided"]')
    assert cell.text == "13"
    assert console_errors(browser) == []
    assert save_screenshot(browser, "report").stat().st_size > 0


def test_windows_released_with_records_are_on_time_and_the_others_overdue(
    clocked: ClockedBus, clocked_auditor: Child
) -> None:
    bus = clocked.bus
    approve_roster_grant(bus)
    daily = clocked.window(STATS)
    publish_records(bus.settings, ROSTER, [roster(seq) for seq in range(3)])
    publish_records(bus.settings, STATS, [stats(seq) for seq in range(2)])
    assert held(bus, 5) == 5
    clocked.move_clock_past(daily.end)  # ends the hourly window too: both are released, with their records
    events = audit_events(bus, 3 + 2)
    assert {(e["data_class"], e["consumer"], e["decision"], e["mode"]) for e in events} == {
        (ROSTER, "tax-levy", "deliver", "periodic"),
        (STATS, "hrss-si", "deliver", "periodic"),
    }
    now = dt.datetime.now(dt.UTC)
    period = month_of(now)
    report = build_report(bus.access, bus.topics, bus.catalogue, period, verifier=control_keys().verifier, now=now)

    # The audit trail dates a release by the auditor's wall clock (the router's skew is not in it): each
    # release closed the window of its class that had last ended by then, which is judged on time when the
    # release came within the hour's grace. Every other window that ended in the month, an hour ago or more,
    # had no release: overdue.
    local = period.start.tzinfo
    released = {e["data_class"]: dt.datetime.fromisoformat(e["time"]).astimezone(local) for e in events}
    hour_closed = released[ROSTER].replace(minute=0, second=0, microsecond=0)
    day_closed = released[STATS].replace(hour=2, minute=0, second=0, microsecond=0)
    if day_closed > released[STATS]:
        day_closed -= dt.timedelta(days=1)
    daily_on_time = int(released[STATS] < day_closed + GRACE)
    # This bus's trail begins with this test's events: windows that ended before are not its to miss.
    assert read_from_its_start(bus.access, bus.topics.audit, period.start)
    began = min(dt.datetime.fromisoformat(e["time"]) for e in events)  # the whole trail (asserted above)
    hourly_judged = judged_windows(period.start, now, dt.timedelta(hours=1), dt.timedelta(hours=1), began)
    daily_judged = judged_windows(period.start, now, dt.timedelta(hours=2), dt.timedelta(days=1), began)
    hourly_overdue = hourly_judged - int(began < hour_closed and hour_closed + GRACE <= now)
    daily_overdue = daily_judged - int(daily_on_time and began < day_closed and day_closed + GRACE <= now)
    roster_row, stats_row = report.data_class(ROSTER), report.data_class(STATS)
    assert (roster_row.windows_on_time, roster_row.windows_overdue) == (1, hourly_overdue)
    assert (stats_row.windows_on_time, stats_row.windows_overdue) == (daily_on_time, daily_overdue)
    # One batch to one subscriber is one call.
    assert (roster_row.records, roster_row.deliveries, roster_row.calls) == (3, 3, 1)
    assert (stats_row.records, stats_row.deliveries, stats_row.calls) == (2, 2, 1)
    amr, tax, hrss = report.department("AMR"), report.department("TAX"), report.department("HRSS")
    assert (amr.classes_published, amr.records_provided, amr.calls_served) == (2, 5, 2)
    assert (tax.records_consumed, tax.calls_received) == (3, 1)
    assert (hrss.records_consumed, hrss.calls_received) == (2, 1)
