"""Apply: choose the receiving system, fields, masking, purpose, scenario and validity; preview what
will be masked; submit through the same grant workflow as the gateway and the CLI."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from sharebus_core.catalogue import DataClass, ShareType, UnknownDataClass
from sharebus_core.grant_log import GrantLogError
from sharebus_grants import GrantNotConfirmed
from sharebus_portal.accounts import Role
from sharebus_portal.catalogue_views import known_class
from sharebus_portal.grant_conflicts import recorded
from sharebus_portal.state import Portal
from sharebus_portal.web import PortalDep, Viewer, ViewerDep, forbid, form_checked, render, require_role, text, texts
from sharebus_rules.grant_workflow import GrantRefused
from sharebus_rules.projection import mask_value

router = APIRouter()

# What a masked value looks like, per kind of field (the router's masking rules, sharebus_rules.projection).
_EXAMPLES = {"id_number": "110105199001011234", "name": "张三丰"}


def masked_example(field: str) -> str:
    sample = next((v for k, v in _EXAMPLES.items() if k in field or field.endswith(f"_{k}")), "ABCDEFGH1234")
    return mask_value(field, sample) or ""


def applicable(app: Portal, viewer: Viewer) -> list[DataClass]:
    """Classes another department provides and shares: what this department can apply for."""
    return [
        c
        for c in app.catalogue.data_classes.values()
        if c.provider != viewer.department and c.share_type is not ShareType.NONE
    ]


def preview_rows(app: Portal, entry: DataClass, fields: list[str], masked: list[str]) -> list[dict[str, Any]]:
    """Per schema field, what the receiving system would get: the value, a masked value, or nothing."""
    rows = []
    for name in app.catalogue.schema(entry.code).field_names:
        sensitive = name in entry.sensitive_fields
        if name not in fields:
            outcome = "not requested · 未申请"
        elif entry.share_type is ShareType.UNCONDITIONAL and sensitive:
            outcome = "withheld: unconditional shares never include sensitive fields · 无条件共享不含敏感字段"
        elif name in masked:
            outcome = f"masked · 脱敏, e.g. {masked_example(name)}"
        else:
            outcome = "as provided · 原值"
        rows.append({"name": name, "sensitive": sensitive, "outcome": outcome, "masked": name in masked})
    return rows


def _form_context(app: Portal, viewer: Viewer, entry: DataClass | None, values: dict[str, Any]) -> dict[str, Any]:
    systems = [s.code for s in app.catalogue.departments[viewer.department].systems]
    fields = list(app.catalogue.schema(entry.code).field_names) if entry else []
    return {"classes": applicable(app, viewer), "entry": entry, "systems": systems, "fields": fields, "values": values}


def _defaults(entry: DataClass | None, app: Portal) -> dict[str, Any]:
    if entry is None:
        return {"fields": [], "masked": [], "purpose": "", "scenario": "", "valid_days": "365", "consumer": ""}
    names = list(app.catalogue.schema(entry.code).field_names)
    open_names = [f for f in names if f not in entry.sensitive_fields]
    fields = open_names if entry.share_type is ShareType.UNCONDITIONAL else names
    masked = [f for f in entry.sensitive_fields if f in fields]
    return {"fields": fields, "masked": masked, "purpose": "", "scenario": "", "valid_days": "365", "consumer": ""}


@router.get("/apply", response_class=HTMLResponse)
async def apply_page(
    request: Request,
    viewer: ViewerDep,
    app: PortalDep,
    data_class: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    await require_role(app, viewer, request, Role.REQUESTER, "grant.apply")
    entry = known_class(app, data_class) if data_class else None
    values = _defaults(entry, app)
    return render(request, "apply.html", viewer, **_form_context(app, viewer, entry, values), preview=None, error=None)


def _values(form: FormData) -> dict[str, Any]:
    return {
        "consumer": text(form, "consumer", 64),
        "fields": texts(form, "fields"),
        "masked": texts(form, "masked"),
        "purpose": text(form, "purpose"),
        "scenario": text(form, "scenario"),
        "valid_days": text(form, "valid_days", 10),
    }


def valid_until_from(days: str) -> dt.datetime | None:
    try:
        value = float(days) if days else 0.0
    except ValueError as exc:
        raise GrantRefused("the validity must be a number of days") from exc
    # Not a number (``nan``) compares false with every bound, so it must be refused by name.
    if not math.isfinite(value) or value < 0 or value > 36_500:
        raise GrantRefused("the validity must be between 0 and 36500 days")
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=value) if value else None


@router.post("/apply", response_class=HTMLResponse)
async def apply(request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    form = await form_checked(request, viewer)
    await require_role(app, viewer, request, Role.REQUESTER, "grant.apply")
    entry = known_class(app, text(form, "data_class", 64))
    values = _values(form)
    # Masking only means something for requested fields.
    values["masked"] = [f for f in values["masked"] if f in values["fields"]]
    context = _form_context(app, viewer, entry, values)
    preview = preview_rows(app, entry, values["fields"], values["masked"])
    if text(form, "action") != "submit":
        return render(request, "apply.html", viewer, **context, preview=preview, error=None)
    owner = app.catalogue.department_of_system.get(values["consumer"])
    if owner is not None and owner != viewer.department:
        raise await forbid(
            app,
            viewer,
            request,
            action="grant.apply",
            reason="not_own_department",
            detail=f"{viewer.department} may only apply for its own systems",
            data_class=entry.code,
        )
    try:
        grant = await run_in_threadpool(
            app.grants.apply,
            department=viewer.department,
            requester=viewer.account.username,
            consumer=values["consumer"],
            data_class=entry.code,
            purpose=values["purpose"],
            scenario=values["scenario"],
            fields=values["fields"],
            masked_fields=values["masked"],
            valid_until=valid_until_from(values["valid_days"]),
        )
    except (GrantRefused, UnknownDataClass) as exc:
        return render(
            request, "apply.html", viewer, status_code=422, **context, preview=preview, error=str(exc.args[0])
        )
    except GrantNotConfirmed as exc:
        # A new application: no other process can have decided it, so the view may hold it now.
        app.view.put(exc.grant)
        return recorded(request, viewer, exc, f"/grants/{exc.grant.grant_id}")
    except GrantLogError as exc:
        return render(request, "apply.html", viewer, status_code=503, **context, preview=preview, error=str(exc))
    app.view.put(grant)
    return RedirectResponse(f"/grants/{grant.grant_id}", status_code=303)
