"""The grant workflow over HTTP, with the CLI's rules (``GrantService`` and ``sharebus_rules.grant_workflow``).

The caller acts for its department. A grant it can neither provide nor consume is 404, as in the CLI,
so its existence does not leak; deciding on a visible grant of another department's class is 403.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from sharebus_core.catalogue import UnknownDataClass
from sharebus_core.grant_log import GrantLogError
from sharebus_core.grants import Grant, GrantState
from sharebus_gateway.auth import Caller, CallerDep, forbid
from sharebus_gateway.publish import normalise_class_code
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute
from sharebus_grants import GrantNotConfirmed, GrantNotFound
from sharebus_rules.grant_workflow import GrantRefused
from sharebus_rules.routing import shown_state

router = APIRouter(prefix="/v1/grants", tags=["grants"], route_class=StrictJsonRoute)

Text = Annotated[str, Field(min_length=1, max_length=2000)]
FieldName = Annotated[str, Field(min_length=1, max_length=200)]
ValidDays = Annotated[float | None, Field(gt=0, le=36_500, description="validity window from now, in days")]


class Application(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consumer: Annotated[str, Field(min_length=1, max_length=64, description="a system of your department")]
    data_class: Annotated[str, Field(min_length=1, max_length=64)]
    purpose: Text
    scenario: Text
    fields: list[FieldName] = Field(default_factory=list, max_length=500)
    masked_fields: list[FieldName] = Field(default_factory=list, max_length=500)
    valid_days: ValidDays = None
    requester: Annotated[
        str | None, Field(max_length=200, description="a person to record beside your key's system, as you state it")
    ] = None


def _optional_text(value: object) -> object:
    """A blank optional text is none: recorded as such, never as an empty reason (which no grant reader accepts)."""
    if isinstance(value, str):
        return value.strip() or None
    return value


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_days: ValidDays = None
    reason: Annotated[
        Annotated[str, Field(max_length=2000)] | None,
        BeforeValidator(_optional_text),
        Field(description="optional; a blank one is recorded as none"),
    ] = None
    fields: list[FieldName] | None = Field(default=None, max_length=500, description="narrow the requested fields")
    masked_fields: list[FieldName] | None = Field(default=None, max_length=500, description="the granted fields masked")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


class GrantView(BaseModel):
    grant: dict[str, Any]
    effective_state: GrantState
    overdue: bool
    # False only in a 202: the write is on the log, but this gateway had not read it back in time.
    confirmed: bool = True


GwDep = Annotated[Gateway, Depends(gateway)]


def _view(gw: Gateway, grant: Grant) -> GrantView:
    return GrantView(
        grant=grant.model_dump(mode="json"),
        # What the router does with it now: an automatic grant that lapsed is "lapsed", not "approved".
        effective_state=shown_state(grant, gw.grants.catalogue, gw.grants.clock()),
        overdue=gw.grants.is_overdue(grant),
    )


def recorded_requester(system: str, stated: str | None) -> str:
    """Who applied, as the grant records it: the key's system, which the gateway authenticated.

    A name in the body is only the caller's word. Recorded alone it would attribute the application
    to anyone (a portal approver's username, say, whom the four-eyes rule would then keep from
    deciding on it), so it is kept beside the system, marked as stated, never as a requester itself.
    """
    stated = (stated or "").strip()
    if not stated or stated == system:
        return system
    return f"{system} (stated: {stated})"


def _until(days: float | None) -> dt.datetime | None:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None


def _unavailable(exc: GrantLogError) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the grants log cannot be read now: {exc}")


def _recorded(gw: Gateway, exc: GrantNotConfirmed) -> JSONResponse:
    """202: the event is on the log, not yet read back here. Never a 503, which a client would retry:
    a retried application is a second one. The body is the grant as written; ``Location`` is where to
    read it (a decision another process made first would show there)."""
    body = _view(gw, exc.grant).model_copy(update={"confirmed": False}).model_dump(mode="json")
    body["detail"] = str(exc)
    location = f"/v1/grants/{exc.grant.grant_id}"
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED, headers={"Location": location})


_RECORDED: dict[int | str, dict[str, Any]] = {
    202: {"description": "recorded on the grants log but not yet read back by this gateway (do not send again)"},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=GrantView,
    summary="Apply for a data class for one of your department's systems",
    responses={
        403: {"description": "the consumer is not your department's"},
        422: {"description": "refused"},
        **_RECORDED,
    },
)
def apply(body: Application, who: CallerDep, request: Request, gw: GwDep) -> GrantView | JSONResponse:
    code = normalise_class_code(body.data_class)
    owner = gw.catalogue.department_of_system.get(body.consumer)
    if owner is not None and owner != who.department:
        raise forbid(
            gw,
            who,
            request,
            action="grant.apply",
            reason="not_own_department",
            detail=f"{who.department} may only apply for its own systems",
            data_class=code,
        )
    try:
        grant = gw.grants.apply(
            department=who.department,
            requester=recorded_requester(who.system, body.requester),
            consumer=body.consumer,
            data_class=code,
            purpose=body.purpose,
            scenario=body.scenario,
            fields=body.fields,
            masked_fields=body.masked_fields,
            valid_until=_until(body.valid_days),
        )
    except (GrantRefused, UnknownDataClass) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"refused: {exc.args[0]}") from exc
    except GrantNotConfirmed as exc:
        return _recorded(gw, exc)
    except GrantLogError as exc:
        raise _unavailable(exc) from exc
    return _view(gw, grant)


@router.get("", summary="Grants your department provides or consumes, newest first")
def list_grants(
    who: CallerDep,
    gw: GwDep,
    state: GrantState | None = None,
    overdue: Annotated[bool, Query(description="only applications past their answer deadline")] = False,
) -> list[GrantView]:
    try:
        grants = gw.grants.list(department=who.department, state=state, overdue_only=overdue)
    except GrantLogError as exc:
        raise _unavailable(exc) from exc
    return [_view(gw, g) for g in grants]


def _visible(gw: Gateway, who: Caller, grant_id: str) -> Grant:
    try:
        return gw.grants.show(grant_id, department=who.department)
    except GrantNotFound as exc:
        raise _not_visible() from exc
    except GrantLogError as exc:
        raise _unavailable(exc) from exc


def _not_visible() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "no such grant visible to your department")


@router.get("/{grant_id}", summary="One grant", responses={404: {"description": "not visible to you"}})
def show(grant_id: str, who: CallerDep, gw: GwDep) -> GrantView:
    return _view(gw, _visible(gw, who, grant_id))


def _decide(gw: Gateway, who: Caller, request: Request, grant_id: str, action: str) -> Grant:
    """The grant, if the caller's department provides its class; 404 if invisible, 403 (audited) if not the provider."""
    grant = _visible(gw, who, grant_id)
    if grant.provider != who.department:
        raise forbid(
            gw,
            who,
            request,
            action=f"grant.{action}",
            reason="not_provider",
            detail=f"only the provider of the data class may {action} grant {grant_id}",
            data_class=grant.data_class,
            provider=grant.provider,
            grant_id=grant_id,
        )
    return grant


def _decided(gw: Gateway, decision: Callable[[], Grant]) -> GrantView | JSONResponse:
    """A decision's answer: the grant, 409 when refused, 202 when recorded but not read back, 503 when the log
    fails, 404 when the grant left the caller's sight since ``_decide`` read it (closed on the log meanwhile)."""
    try:
        grant = decision()
    except GrantNotFound as exc:
        raise _not_visible() from exc
    except GrantRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"refused: {exc}") from exc
    except GrantNotConfirmed as exc:
        return _recorded(gw, exc)
    except GrantLogError as exc:
        raise _unavailable(exc) from exc
    return _view(gw, grant)


_DECIDE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "your department does not provide the grant's class"},
    404: {"description": "not visible to you"},
    409: {"description": "the grant is not in a state that allows it, or the request is incomplete"},
    **_RECORDED,
}


@router.post(
    "/{grant_id}/approve", summary="Approve an application", responses=_DECIDE_RESPONSES, response_model=GrantView
)
def approve(grant_id: str, body: Approval, who: CallerDep, request: Request, gw: GwDep) -> GrantView | JSONResponse:
    _decide(gw, who, request, grant_id, "approve")
    return _decided(
        gw,
        lambda: gw.grants.approve(
            grant_id,
            department=who.department,
            valid_until=_until(body.valid_days),
            reason=body.reason,
            fields=body.fields,
            masked_fields=body.masked_fields,
        ),
    )


@router.post(
    "/{grant_id}/reject",
    summary="Reject an application (a reason is required)",
    responses=_DECIDE_RESPONSES,
    response_model=GrantView,
)
def reject(grant_id: str, body: Decision, who: CallerDep, request: Request, gw: GwDep) -> GrantView | JSONResponse:
    _decide(gw, who, request, grant_id, "reject")
    return _decided(gw, lambda: gw.grants.reject(grant_id, department=who.department, reason=body.reason))


@router.post(
    "/{grant_id}/revoke",
    summary="Revoke an active grant (a reason is required)",
    responses=_DECIDE_RESPONSES,
    response_model=GrantView,
)
def revoke(grant_id: str, body: Decision, who: CallerDep, request: Request, gw: GwDep) -> GrantView | JSONResponse:
    _decide(gw, who, request, grant_id, "revoke")
    return _decided(gw, lambda: gw.grants.revoke(grant_id, department=who.department, reason=body.reason))
