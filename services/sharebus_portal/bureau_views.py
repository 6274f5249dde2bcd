"""Bureau: every department at a glance (overdue applications, overdue providers, growing lag, the
audit chain's status), and the disputes page (the assessment is in ``assessment_views``)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sharebus_core.grants import GrantState
from sharebus_portal.accounts import Role
from sharebus_portal.observed import growing_lag, overdue_providers, scrape
from sharebus_portal.web import PortalDep, ViewerDep, render, require_role
from sharebus_rules.routing import shown_state

router = APIRouter()


@router.get("/bureau", response_class=HTMLResponse)
async def bureau(request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    await require_role(app, viewer, request, Role.OPERATOR, "bureau.view")
    now = app.grants.clock()
    grants = app.view.visible(None)
    overdue = sorted(
        (
            (g, app.grants.days_left(g, now))
            for g in grants
            if g.state is GrantState.APPLIED and app.grants.is_overdue(g)
        ),
        key=lambda row: row[1],
    )
    pending = Counter(g.provider for g in grants if g.state is GrantState.APPLIED)
    late = Counter(g.provider for g, _ in overdue)
    # Active as the router has it: a lapsed automatic grant delivers nothing (shown_state).
    active = Counter(g.consumer_department for g in grants if shown_state(g, app.catalogue, now) is GrantState.APPROVED)
    router_samples = await run_in_threadpool(scrape, app.settings.router_metrics_url)
    monitor_samples = await run_in_threadpool(scrape, app.settings.monitor_metrics_url)
    return render(
        request,
        "bureau.html",
        viewer,
        overdue=overdue,
        departments=app.catalogue.departments,
        pending=pending,
        late=late,
        active=active,
        late_providers=overdue_providers(router_samples) if router_samples is not None else None,
        lag=growing_lag(monitor_samples) if monitor_samples is not None else None,
        chain=app.chain.status,
    )


@router.get("/disputes", response_class=HTMLResponse)
def disputes(request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    now = app.grants.clock()
    # A department sees the disputes it is a party to (as provider or as consumer), as through the API.
    rows = app.disputes.rows(None if viewer.is_bureau else viewer.department, now)
    return render(request, "disputes.html", viewer, rows=rows, now=now)
