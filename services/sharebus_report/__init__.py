"""The assessment report (考核评价): per department, what it promised, shared, consumed and answered.

Computed from the bus's durable records (the audit trail, the grants and the disputes topics), so the
same period always gives the same report. Kafka is read in ``sources``; the counting is pure
(``audit_tally``, ``grant_tally``, ``dispute_tally``, ``windows``, ``assemble``, ``ranking``); the
renderers make HTML (``html``, with ``charts``) and XLSX (``xlsx``).

The renderers are imported when first called: matplotlib and openpyxl take seconds to import, and
the ``sharebus`` command imports this package for every command.
"""

from sharebus_report.build import Rules, build_report
from sharebus_report.model import ClassRow, DepartmentRow, Report
from sharebus_report.period import BadPeriod, Period, parse_period
from sharebus_report.sources import ReportUnavailable


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page, charts embedded."""
    from sharebus_report.html import render_html as render

    return render(report)


def render_xlsx(report: Report) -> bytes:
    """The report's tables as an XLSX workbook."""
    from sharebus_report.xlsx import render_xlsx as render

    return render(report)


__all__ = [
    "BadPeriod",
    "ClassRow",
    "DepartmentRow",
    "Period",
    "Report",
    "ReportUnavailable",
    "Rules",
    "build_report",
    "parse_period",
    "render_html",
    "render_xlsx",
]
