"""What a report holds: one row per department and per data class, and what it was computed from.

The column lists (``DEPARTMENT_COLUMNS``, ``CLASS_COLUMNS``) are shared by the HTML and the XLSX
renderers, so both show the same tables with the same headings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sharebus_report.period import Period

Kind = Literal["text", "int", "ratio", "score"]


@dataclass(frozen=True, slots=True)
class DepartmentRow:
    code: str
    name: str
    name_zh: str | None
    classes_promised: int
    classes_published: int
    records_provided: int
    records_consumed: int
    calls_served: int
    calls_received: int
    denials_received: int
    denials_caused: int
    windows_on_time: int
    windows_overdue: int
    quality_records: int
    completeness: float | None
    validity: float | None
    disputes_received: int
    disputes_on_time: int
    disputes_overdue: int
    disputes_corrected: int
    disputes_raised: int
    grants_received: int
    grants_on_time: int
    grants_overdue: int
    score: float | None = None
    rank: int | None = None

    @property
    def delivery(self) -> float | None:
        return self.classes_published / self.classes_promised if self.classes_promised else None

    @property
    def timeliness(self) -> float | None:
        return _share(self.windows_on_time, self.windows_overdue)

    @property
    def dispute_answers(self) -> float | None:
        return _share(self.disputes_on_time, self.disputes_overdue)

    @property
    def grant_answers(self) -> float | None:
        return _share(self.grants_on_time, self.grants_overdue)


def _share(good: int, bad: int) -> float | None:
    return good / (good + bad) if good + bad else None


@dataclass(frozen=True, slots=True)
class ClassRow:
    code: str
    name: str
    provider: str
    share_type: str
    update: str
    published: bool
    records: int
    deliveries: int
    denials: int
    calls: int
    windows_on_time: int
    windows_overdue: int
    completeness: float | None
    validity: float | None


@dataclass(frozen=True, slots=True)
class Sources:
    """What the report read: events counted, repeats dropped, unreadable events skipped."""

    audit_events: int
    audit_repeats: int
    audit_skipped: int
    grant_events: int
    dispute_events: int
    dispute_skipped: int


@dataclass(frozen=True, slots=True)
class Report:
    namespace: str
    period: Period
    # Events are counted up to this instant: the period's end plus the windows' grace, or the time
    # the report was made while the period is still open.
    as_of: dt.datetime
    departments: tuple[DepartmentRow, ...]
    classes: tuple[ClassRow, ...]
    sources: Sources
    # When the report becomes final: the period's end plus the windows' grace (the cut of a closed
    # period). Until then a window ending at the period's end may still be released on time. None: the end.
    final_at: dt.datetime | None = None

    @property
    def complete(self) -> bool:
        return self.as_of >= (self.final_at or self.period.end)

    def department(self, code: str) -> DepartmentRow:
        return next(row for row in self.departments if row.code == code)

    def data_class(self, code: str) -> ClassRow:
        return next(row for row in self.classes if row.code == code)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    heading: str
    kind: Kind


DEPARTMENT_COLUMNS = (
    Column("rank", "Rank", "int"),
    Column("code", "Department", "text"),
    Column("name", "Name", "text"),
    Column("score", "Score", "score"),
    Column("classes_promised", "Classes promised", "int"),
    Column("classes_published", "Classes published", "int"),
    Column("records_provided", "Records provided", "int"),
    Column("records_consumed", "Records consumed", "int"),
    Column("calls_served", "Calls served", "int"),
    Column("calls_received", "Calls received", "int"),
    Column("denials_received", "Denials received", "int"),
    Column("denials_caused", "Denials caused", "int"),
    Column("windows_on_time", "Windows on time", "int"),
    Column("windows_overdue", "Windows overdue", "int"),
    Column("completeness", "Completeness", "ratio"),
    Column("validity", "Validity", "ratio"),
    Column("disputes_received", "Disputes received", "int"),
    Column("disputes_on_time", "Disputes answered on time", "int"),
    Column("disputes_overdue", "Disputes overdue", "int"),
    Column("disputes_corrected", "Disputes corrected", "int"),
    Column("disputes_raised", "Disputes raised", "int"),
    Column("grants_received", "Grant applications", "int"),
    Column("grants_on_time", "Applications answered in time", "int"),
    Column("grants_overdue", "Applications overdue", "int"),
)

CLASS_COLUMNS = (
    Column("code", "Data class", "text"),
    Column("name", "Name", "text"),
    Column("provider", "Provider", "text"),
    Column("share_type", "Share type", "text"),
    Column("update", "Update", "text"),
    Column("published", "Published", "text"),
    Column("records", "Records", "int"),
    Column("deliveries", "Deliveries", "int"),
    Column("denials", "Denials", "int"),
    Column("calls", "Calls", "int"),
    Column("windows_on_time", "Windows on time", "int"),
    Column("windows_overdue", "Windows overdue", "int"),
    Column("completeness", "Completeness", "ratio"),
    Column("validity", "Validity", "ratio"),
)


def cell(row: DepartmentRow | ClassRow, column: Column) -> str | int | float | None:
    value = getattr(row, column.key)
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, str | int | float) or value is None:
        return value
    raise TypeError(f"{column.key}: {type(value).__name__} is not a cell value")
