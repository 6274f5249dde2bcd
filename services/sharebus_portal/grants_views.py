"""My grants: live, expiring soon, pending and ended, each with its history; approvers of the
providing department revoke here, with the workflow's rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from sharebus_core.catalogue import Catalogue, DataClass, ShareType
from sharebus_core.grant_log import GrantLogError
from sharebus_core.grants import Grant, GrantState
from sharebus_grants import GrantNotConfirmed, GrantNotFound
from sharebus_portal.accounts import Role
from sharebus_portal.grant_conflicts import not_on_log, recorded, view_behind
from sharebus_portal.state import Portal
from sharebus_portal.web import PortalDep, Viewer, ViewerDep, forbid, form_checked, render, text
from sharebus_rules.conferred import Withheld, conferred_in
from sharebus_rules.grant_workflow import GrantRefused
from sharebus_rules.routing import shown_state

router = APIRouter()

EXPIRING_WITHIN = dt.timedelta(days=14)


def grouped(grants: list[Grant], catalogue: Catalogue, now: dt.datetime) -> dict[str, list[Grant]]:
    """The grants by what the router does with them now (``shown_state``): a lapsed automatic grant has ended."""
    groups: dict[str, list[Grant]] = {"expiring": [], "live": [], "pending": [], "ended": []}
    for grant in grants:
        state = shown_state(grant, catalogue, now)
        if state is GrantState.APPROVED:
            soon = grant.valid_until is not None and grant.valid_until - now <= EXPIRING_WITHIN
            groups["expiring" if soon else "live"].append(grant)
        elif state is GrantState.APPLIED:
            groups["pending"].append(grant)
        else:
            groups["ended"].append(grant)
    return groups


def lapse_note(entry: DataClass | None) -> str:
    """Why an automatic grant lapsed (``sharebus_rules.routing.lapsed``), in the words the grant page shows."""
    if entry is None:
        return "The class is no longer in the catalogue: nothing is delivered under this grant."
    if entry.share_type is not ShareType.UNCONDITIONAL:
        return "The class is no longer shared unconditionally; apply again for the provider's approval."
    return "Every field this grant gave is now marked sensitive, and an unconditional share gives none of them."


# Why a granted field is not delivered now (sharebus_rules.conferred), in the words the grant page shows.
WITHHELD_NOTES = {
    Withheld.SENSITIVE: "marked sensitive since the bus granted it: an unconditional share gives no sensitive field",
    Withheld.NOT_IN_SCHEMA: "no longer in the class's schema",
}


def delivered_terms(grant: Grant, catalogue: Catalogue, now: dt.datetime) -> dict[str, Any]:
    """The fields and masks the router delivers under an approved grant now, and the granted fields it
    withholds with the reason; those the grant records when nothing is delivered under it (pending or
    ended: its terms are what was applied for or given)."""
    conferred = conferred_in(grant, catalogue, now)
    if conferred is None:
        return {"fields": grant.fields, "masked": grant.masked_fields, "withheld": ()}
    withheld = tuple((name, WITHHELD_NOTES[why]) for name, why in conferred.withheld)
    return {"fields": conferred.fields, "masked": conferred.masked, "withheld": withheld}


def _scope(viewer: Viewer) -> str | None:
    # What the API shows a department: the grants it provides or consumes. The bureau sees them all.
    return None if viewer.is_bureau else viewer.department


@router.get("/grants", response_class=HTMLResponse)
def my_grants(request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    now = app.grants.clock()
    grants = app.view.visible(_scope(viewer))
    states = {g.grant_id: shown_state(g, app.catalogue, now) for g in grants}
    return render(request, "grants.html", viewer, groups=grouped(grants, app.catalogue, now), states=states)


def visible_grant(app: Portal, viewer: Viewer, grant_id: str) -> Grant:
    grant = app.view.get(grant_id, _scope(viewer))
    if grant is None:
        # As in the API: a grant the department cannot see is missing, so its existence does not leak.
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no grant {grant_id} visible to your department; reload your grants to see them"
        )
    return grant


def _detail(app: Portal, viewer: Viewer, grant: Grant) -> dict[str, Any]:
    now = app.grants.clock()
    entry = app.catalogue.data_classes.get(grant.data_class)
    state = shown_state(grant, entry, now)
    # The workflow's rule, not the shown state: the provider may revoke a lapsed grant, which would
    # otherwise confer again should the class become unconditional again.
    can_revoke = (
        viewer.has(Role.APPROVER)
        and viewer.department == grant.provider
        and grant.effective_state(now) is GrantState.APPROVED
    )
    return {
        "grant": grant,
        "state": state,
        "lapse_note": lapse_note(entry) if state is GrantState.LAPSED else None,
        "history": app.view.history(grant.grant_id),
        "can_revoke": can_revoke,
        "entry": entry,
        **delivered_terms(grant, app.catalogue, now),
    }


@router.get("/grants/{grant_id}", response_class=HTMLResponse)
def grant_page(grant_id: str, request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    grant = visible_grant(app, viewer, grant_id)
    return render(request, "grant.html", viewer, **_detail(app, viewer, grant), error=None)


@router.post("/grants/{grant_id}/revoke", response_class=HTMLResponse)
async def revoke(grant_id: str, request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    form = await form_checked(request, viewer)
    grant = visible_grant(app, viewer, grant_id)
    if not (viewer.has(Role.APPROVER) and viewer.department == grant.provider):
        raise await forbid(
            app,
            viewer,
            request,
            action="grant.revoke",
            reason="not_provider_approver",
            detail=f"only approvers of {grant.provider} may revoke grant {grant_id}",
            data_class=grant.data_class,
            provider=grant.provider,
            grant_id=grant_id,
        )
    try:
        revoked = await run_in_threadpool(
            app.grants.revoke, grant_id, department=viewer.department, reason=text(form, "reason")
        )
    except GrantNotFound as exc:
        raise not_on_log(grant_id, viewer.department, "/grants") from exc
    except GrantRefused as exc:
        behind = await view_behind(app, grant, viewer.department, f"/grants/{grant_id}")
        if behind is not None:
            raise behind from exc
        return render(request, "grant.html", viewer, status_code=409, **_detail(app, viewer, grant), error=str(exc))
    except GrantNotConfirmed as exc:
        return recorded(request, viewer, exc, f"/grants/{grant_id}")
    except GrantLogError as exc:
        return render(request, "grant.html", viewer, status_code=503, **_detail(app, viewer, grant), error=str(exc))
    app.view.put(revoked)
    return RedirectResponse(f"/grants/{grant_id}", status_code=303)
