"""Approval inbox: a department's pending applications, overdue first; approve with fields and masking
adjusted, or reject with a reason. Only approvers of the providing department decide, and never on
an application they made themselves (four eyes, enforced again in ``sharebus_rules.grant_workflow``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from sharebus_core.grant_log import GrantLogError
from sharebus_core.grants import Grant, GrantState
from sharebus_grants import GrantNotConfirmed, GrantNotFound
from sharebus_portal.accounts import Role
from sharebus_portal.apply_views import masked_example, valid_until_from
from sharebus_portal.grant_conflicts import already_decided, not_on_log, recorded, view_behind
from sharebus_portal.state import Portal
from sharebus_portal.web import PortalDep, Viewer, ViewerDep, forbid, form_checked, render, text, texts
from sharebus_rules.grant_workflow import GrantRefused

router = APIRouter()


def pending(app: Portal, department: str) -> list[tuple[Grant, int]]:
    """The department's open applications with their working days left, overdue (and nearest) first."""
    now = app.grants.clock()
    rows = [
        (g, app.grants.days_left(g, now))
        for g in app.view.visible(department)
        if g.provider == department and g.state is GrantState.APPLIED
    ]
    return sorted(rows, key=lambda row: (row[1], row[0].applied_at))


async def _inbox_access(app: Portal, viewer: Viewer, request: Request, department: str, decide: bool) -> None:
    """Approvers of the department see its inbox (the bureau sees every inbox, but decides on none)."""
    if department == viewer.department and viewer.has(Role.APPROVER):
        return
    if viewer.is_bureau and not decide:
        return
    raise await forbid(
        app,
        viewer,
        request,
        action="grant.decide" if decide else "grant.inbox",
        reason="not_provider_approver",
        detail=f"only approvers of {department} may {'decide on' if decide else 'open'} its applications",
        provider=department if department in app.catalogue.departments else None,
    )


@router.get("/inbox")
def own_inbox(viewer: ViewerDep) -> Response:
    return RedirectResponse(f"/departments/{viewer.department}/inbox", status_code=303)


@router.get("/departments/{department}/inbox", response_class=HTMLResponse)
async def inbox(department: str, request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    await _inbox_access(app, viewer, request, department, decide=False)
    return render(request, "inbox.html", viewer, department=department, rows=pending(app, department))


async def _application(app: Portal, viewer: Viewer, request: Request, department: str, grant_id: str) -> Grant:
    await _inbox_access(app, viewer, request, department, decide=True)
    grant = app.view.get(grant_id, viewer.department)
    if grant is None or grant.provider != department:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no application {grant_id} in this inbox; reload the inbox to see what is"
        )
    if grant.state is not GrantState.APPLIED:
        # Opened from an inbox page older than the decision the view has followed since.
        raise already_decided(grant, f"/grants/{grant_id}")
    if grant.requester == viewer.account.username:
        raise await forbid(
            app,
            viewer,
            request,
            action="grant.decide",
            reason="four_eyes",
            detail=f"{viewer.account.username} applied for {grant_id} and so may not decide on it (four eyes)",
            data_class=grant.data_class,
            provider=grant.provider,
            grant_id=grant_id,
        )
    return grant


def _decision_context(app: Portal, grant: Grant) -> dict[str, Any]:
    # None once the class has left the catalogue: the page says so, and offers only to reject.
    entry = app.catalogue.data_classes.get(grant.data_class)
    return {
        "grant": grant,
        "entry": entry,
        "examples": {f: masked_example(f) for f in grant.fields},
        "days_left": app.grants.days_left(grant),
    }


@router.get("/departments/{department}/inbox/{grant_id}", response_class=HTMLResponse)
async def application(department: str, grant_id: str, request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    grant = await _application(app, viewer, request, department, grant_id)
    return render(request, "decide.html", viewer, **_decision_context(app, grant), error=None)


def _decided(app: Portal, viewer: Viewer, form: FormData, grant_id: str) -> Grant:
    """The decision the form asks for, taken on the grant as the log has it (``GrantService``)."""
    who = viewer.account.username
    if text(form, "action") == "approve":
        return app.grants.approve(
            grant_id,
            department=viewer.department,
            valid_until=valid_until_from(text(form, "valid_days", 10)),
            reason=text(form, "reason") or None,
            fields=texts(form, "fields"),
            masked_fields=[f for f in texts(form, "masked") if f in texts(form, "fields")],
            decider=who,
        )
    return app.grants.reject(grant_id, department=viewer.department, reason=text(form, "reason"), decider=who)


@router.post("/departments/{department}/inbox/{grant_id}", response_class=HTMLResponse)
async def decide(department: str, grant_id: str, request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    form = await form_checked(request, viewer)
    grant = await _application(app, viewer, request, department, grant_id)
    inbox_link = f"/departments/{department}/inbox"
    try:
        decided = await run_in_threadpool(_decided, app, viewer, form, grant_id)
    except GrantNotFound as exc:
        raise not_on_log(grant_id, viewer.department, inbox_link) from exc
    except GrantRefused as exc:
        behind = await view_behind(app, grant, viewer.department, inbox_link)
        if behind is not None:
            raise behind from exc
        context = _decision_context(app, grant)
        return render(request, "decide.html", viewer, status_code=409, **context, error=str(exc))
    except GrantNotConfirmed as exc:
        return recorded(request, viewer, exc, f"/grants/{grant_id}")
    except GrantLogError as exc:
        context = _decision_context(app, grant)
        return render(request, "decide.html", viewer, status_code=503, **context, error=str(exc))
    app.view.put(decided)
    return RedirectResponse(inbox_link, status_code=303)
