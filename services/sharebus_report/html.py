"""The report as one self-contained HTML page: styles inline, charts as data URIs, no script, no URL."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sharebus_report.charts import charts
from sharebus_report.model import CLASS_COLUMNS, DEPARTMENT_COLUMNS, ClassRow, Column, DepartmentRow, Report, cell
from sharebus_report.ranking import WEIGHTS

_ENV = Environment(
    loader=PackageLoader("sharebus_report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)

_SHARE_NAMES = {"dispute_answers": "disputes", "grant_answers": "grant applications"}
FORMULA = "score = 100 * sum(weight * share) / sum(weight), over the shares that are defined:"


def show(row: DepartmentRow | ClassRow, column: Column) -> str:
    value = cell(row, column)
    if value is None:
        return "—"
    if column.kind == "ratio" and isinstance(value, float):
        return f"{100 * value:.1f}%"
    if column.kind == "score" and isinstance(value, float):
        return f"{value:.1f}"
    if column.key == "name" and isinstance(row, DepartmentRow) and row.name_zh:
        return f"{row.name} ({row.name_zh})"
    return str(value)


def render_html(report: Report) -> str:
    weights = [(_SHARE_NAMES.get(name, name), weight, what) for name, weight, what in WEIGHTS]
    return _ENV.get_template("report.html.j2").render(
        report=report,
        charts=charts(report),
        department_columns=DEPARTMENT_COLUMNS,
        class_columns=CLASS_COLUMNS,
        show=show,
        formula=FORMULA,
        weights=weights,
    )
