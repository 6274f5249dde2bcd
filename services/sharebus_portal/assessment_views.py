"""Assessment: the period report (``sharebus_report``) for the bureau, with its HTML and XLSX to download.

Made on request in a worker thread and kept a few minutes per period (``reports.ReportCache``). Only
operators (the bureau) see it: like ``sharebus report``, it is the operator's view across every
department.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sharebus_portal.accounts import Role
from sharebus_portal.reports import Assessment
from sharebus_portal.web import PortalDep, ViewerDep, render, require_role
from sharebus_report import BadPeriod, ReportUnavailable, parse_period, render_html, render_xlsx

router = APIRouter()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def current_quarter(now: dt.datetime, timezone: str = "Asia/Shanghai") -> str:
    local = now.astimezone(ZoneInfo(timezone))
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


async def _report(request: Request, viewer: ViewerDep, app: PortalDep, period: str | None) -> Assessment | str:
    """The report asked for, or what prevents it (a bad period, a trail that cannot be read now)."""
    await require_role(app, viewer, request, Role.OPERATOR, "assessment.view")
    try:
        return await run_in_threadpool(app.reports.get, parse_period(period or current_quarter(app.grants.clock())))
    except (BadPeriod, ReportUnavailable) as exc:
        return str(exc)


@router.get("/assessment", response_class=HTMLResponse)
async def assessment(request: Request, viewer: ViewerDep, app: PortalDep, period: str | None = None) -> Response:
    found = await _report(request, viewer, app, period)
    if isinstance(found, str):
        return render(request, "assessment.html", viewer, report=None, charts=(), problem=found, period=period or "")
    report, label = found.report, found.report.period.label
    return render(request, "assessment.html", viewer, report=report, charts=found.charts, problem=None, period=label)


@router.get("/assessment/report.html")
async def report_html(request: Request, viewer: ViewerDep, app: PortalDep, period: str | None = None) -> Response:
    found = await _report(request, viewer, app, period)
    if isinstance(found, str):
        return render(request, "error.html", viewer, status_code=400, code=400, message=found)
    body = await run_in_threadpool(render_html, found.report)
    disposition = f'attachment; filename="report-{found.report.period.label}.html"'
    return Response(body, media_type="text/html; charset=utf-8", headers={"Content-Disposition": disposition})


@router.get("/assessment/report.xlsx")
async def report_xlsx(request: Request, viewer: ViewerDep, app: PortalDep, period: str | None = None) -> Response:
    found = await _report(request, viewer, app, period)
    if isinstance(found, str):
        return render(request, "error.html", viewer, status_code=400, code=400, message=found)
    body = await run_in_threadpool(render_xlsx, found.report)
    disposition = f'attachment; filename="report-{found.report.period.label}.xlsx"'
    return Response(body, media_type=XLSX, headers={"Content-Disposition": disposition})
