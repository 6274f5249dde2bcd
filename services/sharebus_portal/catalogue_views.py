"""Catalogue: search and filter the data classes; one class's schema, legal basis, freshness, subscribers.

The catalogue is the directory every department applies from, so every signed-in official sees all
of it, as every authenticated system does through the gateway (``sharebus_gateway.catalogue_api``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from sharebus_core.catalogue import DataClass, OpenType, ShareType, UpdateMode
from sharebus_core.grants import GrantState
from sharebus_gateway.catalogue_api import matches
from sharebus_portal.observed import provided, scrape
from sharebus_portal.state import Portal
from sharebus_portal.web import PortalDep, ViewerDep, render
from sharebus_rules.routing import shown_state

router = APIRouter()


def known_class(app: Portal, code: str) -> DataClass:
    entry = app.catalogue.data_classes.get(code.replace(".", "/", 1) if "/" not in code else code)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such data class in the catalogue")
    return entry


def schema_rows(app: Portal, entry: DataClass) -> list[dict[str, Any]]:
    """One row per field: name, type, doc, and whether the catalogue marks it sensitive."""
    document = json.loads(app.catalogue.schema(entry.code).text)
    return [
        {
            "name": f["name"],
            "type": json.dumps(f["type"], ensure_ascii=False) if not isinstance(f["type"], str) else f["type"],
            "doc": f.get("doc", ""),
            "sensitive": f["name"] in entry.sensitive_fields,
            "key": f["name"] == entry.key_field,
        }
        for f in document["fields"]
    ]


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue(
    request: Request,
    viewer: ViewerDep,
    app: PortalDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    department: Annotated[str | None, Query(max_length=16)] = None,
    share_type: Annotated[str | None, Query(max_length=32)] = None,
    update_mode: Annotated[str | None, Query(max_length=32)] = None,
    open_type: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    # Empty select values mean "any"; unknown ones simply match nothing.
    found = [
        c
        for c in app.catalogue.data_classes.values()
        if (not q or matches(c, q))
        and (not department or c.provider == department)
        and (not share_type or c.share_type.value == share_type)
        and (not update_mode or c.update.mode.value == update_mode)
        and (not open_type or c.open_type.value == open_type)
    ]
    return render(
        request,
        "catalogue.html",
        viewer,
        classes=found,
        departments=app.catalogue.departments,
        share_types=[t.value for t in ShareType],
        update_modes=[m.value for m in UpdateMode],
        open_types=[o.value for o in OpenType],
        chosen={
            "q": q or "",
            "department": department,
            "share_type": share_type,
            "update_mode": update_mode,
            "open_type": open_type,
        },
    )


@router.get("/catalogue/{code:path}", response_class=HTMLResponse)
async def data_class(code: str, request: Request, viewer: ViewerDep, app: PortalDep) -> HTMLResponse:
    entry = known_class(app, code)
    samples = await run_in_threadpool(scrape, app.settings.router_metrics_url)
    figures = provided(samples, entry.provider, [entry.code]).get(entry.code) if samples is not None else None
    now = app.grants.clock()
    # Only grants the viewer's department could list through the API (the bureau sees all).
    scope = None if viewer.is_bureau else viewer.department
    granted = sorted(
        {
            g.consumer
            for g in app.view.visible(scope)
            if g.data_class == entry.code and shown_state(g, entry, now) is GrantState.APPROVED
        }
    )
    return render(
        request,
        "class.html",
        viewer,
        entry=entry,
        department=app.catalogue.departments[entry.provider],
        rows=schema_rows(app, entry),
        subscribers=[s.system for s in app.catalogue.subscriptions_of(entry.code)],
        granted_consumers=granted,
        figures=figures,
        metrics_known=samples is not None,
        can_apply=viewer.department != entry.provider and entry.share_type is not ShareType.NONE,
        GrantState=GrantState,
    )
