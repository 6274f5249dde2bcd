"""When a page came from the portal's followed view of the grants and the grants log has moved on.

The pages' view (``GrantView``) is fed by the same reader as the view decisions are checked by
(``FollowedGrants``), and a page may be older than both. A decision is never taken from the page:
``GrantService`` checks it against the followed view, once that view has passed the portal's last write,
one decision at a time. So a stale page can never act, but the disagreement must be told as what it is:
the grant is no longer on the log as the page showed it (404), or it was decided, ended or closed there
since (409). Either way nothing was changed, and the official is told to reload.
"""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from sharebus_core.errors import SharebusError
from sharebus_core.grant_log import GrantLogError
from sharebus_core.grants import Grant
from sharebus_grants import GrantNotConfirmed, GrantNotFound
from sharebus_portal.state import Portal
from sharebus_portal.web import Viewer, render
from sharebus_rules.grant_workflow import GrantRefused


class StalePage(SharebusError):
    """The page showed a grant as it no longer is; answered with ``status_code``, the message and a link."""

    def __init__(self, status_code: int, message: str, link: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.link = link


def not_on_log(grant_id: str, department: str, link: str) -> StalePage:
    """404: the view still held the grant, the log has no such grant ``department`` may see."""
    return StalePage(
        404,
        f"Grant {grant_id} is not on the grants log as {department} can see it (closed, or never written): "
        "the page showed it from the portal's view, which had not caught up with the log. "
        "Nothing was changed; reload the page.",
        link,
    )


def already_decided(grant: Grant, link: str) -> StalePage:
    """409: a link or form from an inbox page older than the decision the view has followed since."""
    return StalePage(
        409,
        f"Application {grant.grant_id} is already {grant.state.value}: there is nothing left to decide. "
        "The page it came from was older than that decision; reload the inbox.",
        link,
    )


def moved_on(shown: Grant, current: Grant, now: dt.datetime, link: str) -> StalePage:
    """409: the log has the grant in another state than the page showed (decided or ended elsewhere)."""
    return StalePage(
        409,
        f"Grant {shown.grant_id} is {current.effective_state(now).value} on the grants log, but the page showed "
        f"it as {shown.effective_state(now).value}: it changed before the portal's view caught up with it. "
        "Nothing was changed; reload the page to see it as it is now.",
        link,
    )


async def view_behind(app: Portal, shown: Grant, department: str, link: str) -> StalePage | None:
    """Why an action on ``shown`` was refused, when the reason is that the view was behind the log.

    Called once the grant service refused the action: it reads the grant from the log again and
    compares. ``None`` when the log has the grant as the page showed it (the refusal is about the
    request itself), or when the log cannot be read now (the refusal stands as it was).
    """
    try:
        current = await run_in_threadpool(app.grants.show, shown.grant_id, department=department)
    except GrantNotFound:
        return not_on_log(shown.grant_id, department, link)
    except (GrantLogError, GrantRefused):
        return None
    if current.state is shown.state:
        return None
    # Only a step forward changes the view, so this cannot bring back a state the log has left.
    app.view.put(current)
    return moved_on(shown, current, app.grants.clock(), link)


def recorded(request: Request, viewer: Viewer, exc: GrantNotConfirmed, link: str) -> HTMLResponse:
    """202: the action is on the grants log, but the portal's view had not read it back in time.

    Not the 503 of a log that cannot be read: sent again, an application would be a second one, and a
    decision would be refused as already taken. For a decision, the log's order settles whether it took
    effect (another process may have decided first); the grant's page shows which once the view has it.
    """
    message = (
        f"Grant {exc.grant.grant_id} was recorded on the grants log; the portal has not shown it yet. "
        "Do not send it again: open it in a few seconds to see it as the log has it."
    )
    return render(request, "recorded.html", viewer, status_code=202, message=message, link=link)
