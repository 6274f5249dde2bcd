"""From the tallies to the report's rows: per data class, then per department, then ranked. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sharebus_core.catalogue import Catalogue, DataClass, UpdateMode
from sharebus_report.audit_tally import AuditTally, ClassTally, SystemTally
from sharebus_report.dispute_tally import DisputeCounts, DisputeTally
from sharebus_report.grant_tally import GrantCounts
from sharebus_report.model import ClassRow, DepartmentRow, Report, Sources
from sharebus_report.period import Period
from sharebus_report.ranking import rank
from sharebus_report.windows import WindowCounts, assess_windows


@dataclass(frozen=True, slots=True)
class Tallies:
    audit: AuditTally
    grants: Mapping[str, GrantCounts]
    grant_events: int
    disputes: DisputeTally


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _update(entry: DataClass) -> str:
    if entry.mode is UpdateMode.PERIODIC and entry.update.period is not None:
        return f"periodic ({entry.update.period.value})"
    return entry.mode.value


def class_rows(catalogue: Catalogue, audit: AuditTally) -> tuple[ClassRow, ...]:
    rows = []
    for code in sorted(catalogue.data_classes):
        entry = catalogue.data_classes[code]
        tally = audit.classes.get(code, ClassTally())
        windows = WindowCounts()
        if entry.mode is UpdateMode.PERIODIC:
            windows = assess_windows(
                entry.update, audit.period, audit.as_of, audit.grace, tally.released_ends, audit.bus_began
            )
        rows.append(
            ClassRow(
                code=code,
                name=entry.name,
                provider=entry.provider,
                share_type=entry.share_type.value,
                update=_update(entry),
                published=tally.records > 0,
                records=tally.records,
                deliveries=tally.deliveries,
                denials=tally.denials,
                calls=tally.calls,
                windows_on_time=windows.on_time,
                windows_overdue=windows.overdue,
                completeness=_ratio(tally.filled, tally.fields),
                validity=_ratio(tally.valid, tally.quality_records),
            )
        )
    return tuple(rows)


def _consumer_side(catalogue: Catalogue, audit: AuditTally, department: str) -> SystemTally:
    total = SystemTally()
    for system, tally in audit.systems.items():
        if catalogue.department_of_system.get(system) == department:
            total.received += tally.received
            total.calls += tally.calls
            total.denials += tally.denials
            total.refusals += tally.refusals
    return total


def department_row(catalogue: Catalogue, code: str, classes: tuple[ClassRow, ...], tallies: Tallies) -> DepartmentRow:
    department = catalogue.departments[code]
    own = [row for row in classes if row.provider == code]
    quality = [tallies.audit.classes[row.code] for row in own if row.code in tallies.audit.classes]
    consumer = _consumer_side(catalogue, tallies.audit, code)
    disputes = tallies.disputes.departments.get(code, DisputeCounts())
    grants = tallies.grants.get(code, GrantCounts())
    return DepartmentRow(
        code=code,
        name=department.name,
        name_zh=department.name_zh,
        classes_promised=len(own),
        classes_published=sum(1 for row in own if row.published),
        records_provided=sum(row.records for row in own),
        records_consumed=consumer.received,
        calls_served=sum(row.calls for row in own),
        calls_received=consumer.calls,
        denials_received=consumer.denials + consumer.refusals,
        denials_caused=sum(row.denials for row in own),
        windows_on_time=sum(row.windows_on_time for row in own),
        windows_overdue=sum(row.windows_overdue for row in own),
        quality_records=sum(t.quality_records for t in quality),
        completeness=_ratio(sum(t.filled for t in quality), sum(t.fields for t in quality)),
        validity=_ratio(sum(t.valid for t in quality), sum(t.quality_records for t in quality)),
        disputes_received=disputes.on_time + disputes.overdue + disputes.pending,
        disputes_on_time=disputes.on_time,
        disputes_overdue=disputes.overdue,
        disputes_corrected=disputes.corrected,
        disputes_raised=disputes.raised,
        grants_received=grants.received,
        grants_on_time=grants.on_time,
        grants_overdue=grants.overdue,
    )


def assemble(catalogue: Catalogue, namespace: str, tallies: Tallies) -> Report:
    audit = tallies.audit
    classes = class_rows(catalogue, audit)
    departments = rank(department_row(catalogue, code, classes, tallies) for code in catalogue.departments)
    sources = Sources(
        audit_events=audit.events,
        audit_repeats=audit.repeats,
        audit_skipped=audit.skipped,
        grant_events=tallies.grant_events,
        dispute_events=tallies.disputes.events,
        dispute_skipped=tallies.disputes.skipped,
    )
    final_at = audit.period.end + audit.grace
    return Report(namespace, audit.period, audit.as_of, departments, classes, sources, final_at)


def report_cut(period: Period, now: dt.datetime, grace: dt.timedelta) -> dt.datetime:
    """Events are counted up to the period's end plus the grace of its last windows, or up to now
    while that has not come: a closed period's report never changes afterwards."""
    return min(period.end + grace, now)
