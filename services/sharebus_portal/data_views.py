"""My data: what the department provides (calls, records, consumers, freshness, dead letters) and
what it receives, as a live preview of each of its systems' feeds over SSE.

The preview reads the system's delivery topic with the gateway's feed code
(``sharebus_gateway.feed``), so it shows exactly what the router delivered: granted fields only,
masked as granted. It also drops a record whose grant the portal has seen end, so a revocation
stops the preview at once, even before the router's own view has caught up.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from sharebus_core.grants import Grant, GrantState
from sharebus_gateway import positions as pos
from sharebus_gateway.feed import FeedSession, FeedSource, FeedUnavailable
from sharebus_portal.observed import provided, scrape
from sharebus_portal.state import Portal
from sharebus_portal.web import PortalDep, ViewerDep, forbid, render
from sharebus_rules.routing import shown_state

router = APIRouter()


@router.get("/data", response_class=HTMLResponse)
async def my_data(request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    department = viewer.department
    classes = [c.code for c in app.catalogue.classes_of(department)]
    samples = await run_in_threadpool(scrape, app.settings.router_metrics_url)
    figures = provided(samples, department, classes) if samples is not None else {}
    now = app.grants.clock()
    consumers = {
        code: sorted(
            {s.system for s in app.catalogue.subscriptions_of(code)}
            | {g.consumer for g in app.view.visible(department) if g.data_class == code and _in_force(app, g, now)}
        )
        for code in classes
    }
    systems = [s.code for s in app.catalogue.departments[department].systems]
    return render(
        request,
        "data.html",
        viewer,
        classes=[app.catalogue.data_classes[c] for c in classes],
        figures=figures,
        consumers=consumers,
        metrics_known=samples is not None,
        systems=systems,
    )


def _in_force(app: Portal, grant: Grant, now: dt.datetime) -> bool:
    """Approved, unexpired and not lapsed (``shown_state``): what the router delivers under."""
    return shown_state(grant, app.catalogue, now) is GrantState.APPROVED


def _allowed(app: Portal, grant_id: str | None) -> bool:
    """A record delivered under a grant is shown only while the portal sees that grant in force."""
    if grant_id is None:
        return True
    grant = app.view.get(grant_id, None)
    return grant is not None and _in_force(app, grant, app.grants.clock())


async def _events(app: Portal, session: FeedSession) -> AsyncIterator[bytes]:
    keepalive = app.settings.feed_keepalive_s
    try:
        yield b": sharebus portal preview\n\n"
        while True:
            event = await session.next(keepalive)
            if session.stalled.is_set():
                yield b'event: error\ndata: {"reason": "slow_client"}\n\n'
                return
            if event is None:
                yield b": keep-alive\n\n"
                continue
            if not _allowed(app, event.data.get("grant_id")):
                continue
            body = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
            yield f"event: delivery\ndata: {body}\n\n".encode()
    finally:
        app.previews.give_back()
        # The browser went away (the response is being cancelled): close the Kafka consumer anyway.
        with anyio.CancelScope(shield=True):
            await session.close()


@router.get("/data/feed/{system}")
async def preview(system: str, request: Request, viewer: ViewerDep, app: PortalDep) -> Response:
    # The gateway's rule, by department: an official sees the feeds of its own department's systems.
    if app.catalogue.department_of_system.get(system) != viewer.department:
        raise await forbid(
            app,
            viewer,
            request,
            action="feed.preview",
            reason="not_own_system",
            detail=f"{viewer.department} may only preview its own systems' feeds",
        )
    if not app.previews.take():
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "too many live previews are open; try again later")
    session = FeedSession(FeedSource(app.settings, app.topics.delivery(system), system), app.settings)
    try:
        await session.open(pos.LATEST)
    except FeedUnavailable as exc:
        app.previews.give_back()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    except BaseException:
        app.previews.give_back()
        raise
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(app, session), media_type="text/event-stream", headers=headers)
