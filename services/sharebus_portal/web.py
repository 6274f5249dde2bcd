"""Who is signed in, what they may open, and the 403 path (audited before it is answered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from sharebus_core.errors import SharebusError
from sharebus_portal.accounts import Account, Role
from sharebus_portal.audit import portal_fact
from sharebus_portal.labels import label
from sharebus_portal.sessions import Session, csrf_ok
from sharebus_portal.state import TEMPLATES, Portal, portal

SESSION_COOKIE = "sharebus_portal_session"


class SignInRequired(SharebusError):
    """No valid session: the page answers with a redirect to the sign-in page."""


class Forbidden(SharebusError):
    """Refused (already audited): the page answers 403 with this message."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadCsrf(SharebusError):
    """A form without this session's CSRF token: refused with 403, changing nothing."""


@dataclass(frozen=True, slots=True)
class Viewer:
    account: Account
    session: Session

    @property
    def department(self) -> str:
        return self.account.department

    @property
    def is_bureau(self) -> bool:
        return self.account.has(Role.OPERATOR)

    def has(self, role: Role) -> bool:
        return self.account.has(role)


def current_viewer(request: Request) -> Viewer | None:
    app = portal(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = app.sessions.get(session_id)
    if session is None:
        return None
    # Read each time: an account removed or changed by the operator takes effect on the next page.
    account = app.accounts.get(session.username)
    if account is None or not session.signed_in_as(account):
        # Removed, or given a new password (a leak, a stolen session): the session ends for good, so
        # that the account added again, or its old password, never brings it back.
        app.sessions.end(session_id)
        return None
    return Viewer(account, session)


def signed_in(request: Request) -> Viewer:
    viewer = current_viewer(request)
    if viewer is None:
        raise SignInRequired
    return viewer


async def forbid(
    app: Portal,
    viewer: Viewer,
    request: Request,
    *,
    action: str,
    reason: str,
    detail: str,
    data_class: str | None = None,
    provider: str | None = None,
    grant_id: str | None = None,
) -> Forbidden:
    """Audits a refusal (waiting for Kafka) and returns the exception to raise."""
    fact = portal_fact(
        action=action,
        username=viewer.account.username,
        department=viewer.department,
        method=request.method,
        path=request.url.path,
        reason=reason,
        client=request.client.host if request.client else None,
        data_class=data_class,
        provider=provider,
        grant_id=grant_id,
    )
    await run_in_threadpool(app.audit.write, fact)
    return Forbidden(detail)


async def signed_in_department(request: Request) -> Viewer:
    """The viewer, once its department is still in the catalogue: every page's (and action's) gate.

    An account outlives a department that leaves the catalogue (merged, renamed); its pages would look
    the department up and fail, and it must not apply for or decide anything, so it is an audited 403.
    Signing out (``signed_in`` alone) still works."""
    viewer = signed_in(request)
    app = portal(request)
    if viewer.department not in app.catalogue.departments:
        raise await forbid(
            app,
            viewer,
            request,
            action="portal.page",
            reason="department_not_in_catalogue",
            detail=(
                f"{viewer.department} is no longer in the catalogue, so {viewer.account.username} may not use"
                " the portal; ask the bureau to move the account to its department now"
                f" · {viewer.department} 已不在目录中, 请联系管理部门"
            ),
        )
    return viewer


ViewerDep = Annotated[Viewer, Depends(signed_in_department)]
PortalDep = Annotated[Portal, Depends(portal)]


async def require_role(app: Portal, viewer: Viewer, request: Request, role: Role, action: str) -> None:
    if not viewer.has(role):
        raise await forbid(
            app,
            viewer,
            request,
            action=action,
            reason=f"not_{role.value}",
            detail=f"{viewer.account.username} is not a {role.value} of {viewer.department}",
        )


async def form_checked(request: Request, viewer: Viewer) -> FormData:
    """The posted form, once its CSRF token is this session's; ``BadCsrf`` otherwise."""
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not csrf_ok(viewer.session, token):
        raise BadCsrf
    return form


def text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def texts(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)][:500]


def render(
    request: Request, template: str, viewer: Viewer | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "label": label, "Role": Role, **context},
        status_code=status_code,
    )
