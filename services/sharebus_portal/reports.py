"""The assessment page's reports, kept a while: each one streams a whole period of the audit trail,
so it is made on request and never remade per page view."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sharebus_report import Period, Report

if TYPE_CHECKING:
    from sharebus_report.charts import Chart


@dataclass(frozen=True)
class Assessment:
    report: Report
    charts: tuple[Chart, ...]


class ReportCache:
    """Reports (and their charts) by period label, each kept ``ttl_s``; one build at a time (each
    reads the whole period's trail)."""

    def __init__(self, build: Callable[[Period], Report], ttl_s: float = 300.0) -> None:
        self._build = build
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, Assessment]] = {}

    def get(self, period: Period) -> Assessment:
        with self._lock:
            kept = self._kept.get(period.label)
            if kept is not None and time.monotonic() - kept[0] < self._ttl_s:
                return kept[1]
            # Imported here: matplotlib takes seconds to import, and most portal processes never need it.
            from sharebus_report.charts import charts

            report = self._build(period)
            made = Assessment(report, charts(report))
            self._kept[period.label] = (time.monotonic(), made)
            return made
