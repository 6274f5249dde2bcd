"""The report's tables as an XLSX workbook, for officials who work in spreadsheets.

Sheets: ``Departments`` (the ranking table), ``Classes`` (one row per catalogue class) and ``About``
(the period, the cut, the formula, what was read). Numbers are numbers (ratios as fractions with a
percent format), so the workbook can be sorted and summed; an undefined share is an empty cell.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from sharebus_report.html import FORMULA
from sharebus_report.model import CLASS_COLUMNS, DEPARTMENT_COLUMNS, ClassRow, Column, DepartmentRow, Report, cell
from sharebus_report.ranking import WEIGHTS

_FORMATS = {"ratio": "0.0%", "score": "0.0", "int": "0"}
_MISSING = PatternFill("solid", fgColor="FFEBEE")


def _append(sheet: Worksheet, values: Sequence[str | int | float | None]) -> None:
    """One row; text stays text. openpyxl takes a string that starts with ``=`` for a formula, and names
    come from catalogues (a district's among them): a name like ``=WEBSERVICE(...)`` would run in the
    bureau's spreadsheet and could send the report's figures to whoever wrote it."""
    sheet.append(list(values))
    for value, written in zip(values, sheet[sheet.max_row], strict=False):
        if isinstance(value, str):
            written.data_type = "s"


def _table(sheet: Worksheet, columns: Sequence[Column], rows: Sequence[DepartmentRow | ClassRow]) -> None:
    _append(sheet, [column.heading for column in columns])
    for index in range(1, len(columns) + 1):
        sheet.cell(row=1, column=index).font = Font(bold=True)
    for row in rows:
        _append(sheet, [cell(row, column) for column in columns])
        line = sheet.max_row
        for index, column in enumerate(columns, start=1):
            if column.kind in _FORMATS:
                sheet.cell(row=line, column=index).number_format = _FORMATS[column.kind]
            if isinstance(row, ClassRow) and not row.published:
                sheet.cell(row=line, column=index).fill = _MISSING
    sheet.freeze_panes = "B2"
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(40, len(column.heading) + 2))


def _about(sheet: Worksheet, report: Report) -> None:
    local = report.period.start.tzinfo
    rows: list[tuple[str, str | int]] = [
        ("Namespace", report.namespace),
        ("Period", report.period.label),
        ("Starts", report.period.start.isoformat()),
        ("Ends (excluded)", report.period.end.isoformat()),
        ("Events counted up to", report.as_of.astimezone(local).isoformat(timespec="seconds")),
        ("Complete", "yes" if report.complete else "no: the period, or the grace of its last windows, is not over"),
        ("Score", FORMULA),
        *((f"  {name} (weight {weight})", what) for name, weight, what in WEIGHTS),
        ("Audit events counted", report.sources.audit_events),
        ("Repeated decisions dropped", report.sources.audit_repeats),
        ("Unreadable audit events", report.sources.audit_skipped),
        ("Signed grant events", report.sources.grant_events),
        ("Dispute events", report.sources.dispute_events),
        ("Unreadable dispute events", report.sources.dispute_skipped),
    ]
    for row in rows:
        _append(sheet, row)
    sheet.column_dimensions["A"].width = 32
    sheet.column_dimensions["B"].width = 80


def render_xlsx(report: Report) -> bytes:
    workbook = Workbook()
    departments = workbook.active
    assert departments is not None  # a new workbook always has its first sheet
    departments.title = "Departments"
    _table(departments, DEPARTMENT_COLUMNS, report.departments)
    _table(workbook.create_sheet("Classes"), CLASS_COLUMNS, report.classes)
    _about(workbook.create_sheet("About"), report)
    # The document's own times are the report's cut, not the time of writing: same report, same file.
    stamp = report.as_of.astimezone(dt.UTC).replace(tzinfo=None)
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    workbook.properties.creator = "sharebus report"
    buffer = io.BytesIO()
    # Not workbook.save(): it sets ``modified`` to the time of writing, so two renders a second apart
    # would differ. The writer it calls writes the properties as they are.
    ExcelWriter(workbook, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    return _stamped(buffer.getvalue(), stamp)


def _stamped(data: bytes, stamp: dt.datetime) -> bytes:
    """The workbook's zip with every member dated ``stamp`` (openpyxl dates them at the time of writing)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(member))
    return out.getvalue()
