"""``sharebus report``: a period's assessment report as HTML (with charts) and XLSX, from the bus's own records."""

from __future__ import annotations

import argparse
from pathlib import Path

from sharebus_core.catalogue import Catalogue
from sharebus_core.errors import SharebusError
from sharebus_core.topics import TopicNames
from sharebus_report import Report, Rules, build_report, parse_period, render_html, render_xlsx
from sharebus_report.settings import ReportSettings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="the assessment report of a period per department (HTML with charts, XLSX), from the audit trail",
    )
    report.add_argument("--period", required=True, help="a quarter (2026-Q4), a month (2026-11) or a year (2026)")
    report.add_argument("--out", type=Path, help="the directory to write into (default: var/reports)")


def _ranking(report: Report) -> str:
    lines = [f"{'rank':>4}  {'department':<10} {'score':>6}  published  on time/overdue windows  disputes on time"]
    for row in report.departments:
        rank = str(row.rank) if row.rank is not None else "-"
        score = f"{row.score:6.1f}" if row.score is not None else f"{'-':>6}"
        lines.append(
            f"{rank:>4}  {row.code:<10} {score}  {row.classes_published:>3}/{row.classes_promised:<5}"
            f"  {row.windows_on_time:>7}/{row.windows_overdue:<15}  {row.disputes_on_time}/{row.disputes_received}"
        )
    return "\n".join(lines)


class OutputUnwritable(SharebusError, OSError):
    """The directory the report is to be written into cannot be made or written."""


def _writable(out: Path) -> Path:
    """``out``, made if missing; checked before the trail is read, which takes a while."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputUnwritable(f"cannot write the report into {out}: {exc.strerror or exc}") from exc
    return out


def run(args: argparse.Namespace, catalogue: Catalogue) -> tuple[str, int]:
    settings = ReportSettings()
    period = parse_period(args.period, settings.timezone)
    out = _writable(args.out or settings.out_dir)
    rules = Rules(
        settings.grace, settings.grant_deadline_working_days, settings.dedupe_window, settings.grants_deadline_zone
    )
    verifier = settings.control_keys().verifier
    report = build_report(
        settings.kafka, TopicNames(settings.namespace), catalogue, period, verifier=verifier, rules=rules
    )
    html, xlsx = out / f"report-{period.label}.html", out / f"report-{period.label}.xlsx"
    try:
        html.write_text(render_html(report), encoding="utf-8")
        xlsx.write_bytes(render_xlsx(report))
    except OSError as exc:
        raise OutputUnwritable(f"cannot write the report into {out}: {exc.strerror or exc}") from exc
    final = f" until {report.final_at}" if report.final_at is not None else ""
    state = "complete" if report.complete else f"so far: not final{final} (counted up to {report.as_of})"
    return f"{period.label} ({state})\n{_ranking(report)}\nwrote {html}\nwrote {xlsx}", 0
