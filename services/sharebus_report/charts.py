"""The report's charts: matplotlib figures saved as SVG and embedded as data URIs (no external file).

Built on ``matplotlib.figure.Figure`` directly, not pyplot: no global state, no GUI backend, safe in a
server thread. The SVG is made deterministic (no date, fixed id salt), so the same report renders
to the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from sharebus_report.model import DepartmentRow, Report

_STYLE: dict[RcKeyType, Any] = {"svg.hashsalt": "sharebus-report", "svg.fonttype": "none", "font.size": 9.0}
_GOOD, _BAD, _OTHER = "#2e7d32", "#c62828", "#1565c0"


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    uri: str  # data:image/svg+xml;base64,...


def _uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(rows: int) -> tuple[Figure, Axes]:
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(7.5, max(2.2, 0.32 * rows + 1.2)), layout="constrained")
        return figure, figure.add_subplot()


def _nothing(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#666666")
    axes.set_axis_off()


def _paired(
    axes: Axes, rows: Sequence[DepartmentRow], values: Sequence[tuple[str, Sequence[float], str]], label: str
) -> None:
    """Horizontal bars, one group per department, one bar per (legend, values, colour)."""
    height = 0.8 / len(values)
    positions = list(range(len(rows)))
    for index, (legend, numbers, colour) in enumerate(values):
        axes.barh([p + index * height for p in positions], numbers, height=height, label=legend, color=colour)
    axes.set_yticks([p + height * (len(values) - 1) / 2 for p in positions], [r.code for r in rows])
    axes.invert_yaxis()
    axes.set_xlabel(label)
    axes.legend(loc="lower right", fontsize=8)


def score_chart(report: Report) -> Chart:
    ranked = [r for r in report.departments if r.score is not None]
    figure, axes = _figure(len(ranked))
    if ranked:
        axes.barh([r.code for r in ranked], [r.score or 0.0 for r in ranked], color=_OTHER)
        axes.invert_yaxis()
        axes.set_xlim(0, 100)
        axes.set_xlabel("score (of 100)")
        for position, row in enumerate(ranked):
            axes.text((row.score or 0.0) + 1, position, f"{row.score:.1f}", va="center", fontsize=8)
    else:
        _nothing(axes, "no department provides a class")
    return Chart("score", "Ranking of departments", _uri(figure))


def delivery_chart(report: Report) -> Chart:
    providers = [r for r in report.departments if r.classes_promised]
    figure, axes = _figure(len(providers))
    if providers:
        bars = [
            ("promised", [float(r.classes_promised) for r in providers], "#9e9e9e"),
            ("published", [float(r.classes_published) for r in providers], _GOOD),
        ]
        _paired(axes, providers, bars, "data classes")
    else:
        _nothing(axes, "the catalogue promises no class")
    return Chart("delivery", "Classes promised and published", _uri(figure))


def records_chart(report: Report) -> Chart:
    rows = [r for r in report.departments if r.records_provided or r.records_consumed]
    figure, axes = _figure(len(rows))
    if rows:
        bars = [
            ("provided", [float(r.records_provided) for r in rows], _OTHER),
            ("consumed", [float(r.records_consumed) for r in rows], "#ef6c00"),
        ]
        _paired(axes, rows, bars, "records")
    else:
        _nothing(axes, "no record in this period")
    return Chart("records", "Records provided and consumed", _uri(figure))


def quality_chart(report: Report) -> Chart:
    rows = [r for r in report.departments if r.quality_records]
    figure, axes = _figure(len(rows))
    if rows:
        bars = [
            ("completeness", [100 * (r.completeness or 0.0) for r in rows], _OTHER),
            ("validity", [100 * (r.validity or 0.0) for r in rows], _GOOD),
        ]
        _paired(axes, rows, bars, "% (of fields filled, of records valid)")
        axes.set_xlim(0, 100)
    else:
        _nothing(axes, "no quality-checked record in this period")
    return Chart("quality", "Quality of the records provided", _uri(figure))


def timeliness_chart(report: Report) -> Chart:
    rows = [r for r in report.departments if r.windows_on_time or r.windows_overdue]
    figure, axes = _figure(len(rows))
    if rows:
        codes = [r.code for r in rows]
        on_time = [float(r.windows_on_time) for r in rows]
        axes.barh(codes, on_time, color=_GOOD, label="on time")
        axes.barh(codes, [float(r.windows_overdue) for r in rows], left=on_time, color=_BAD, label="overdue")
        axes.invert_yaxis()
        axes.set_xlabel("periodic windows")
        axes.legend(loc="lower right", fontsize=8)
    else:
        _nothing(axes, "no periodic window judged in this period")
    return Chart("timeliness", "Periodic windows on time and overdue", _uri(figure))


def charts(report: Report) -> tuple[Chart, ...]:
    return (
        score_chart(report),
        delivery_chart(report),
        records_chart(report),
        quality_chart(report),
        timeliness_chart(report),
    )
