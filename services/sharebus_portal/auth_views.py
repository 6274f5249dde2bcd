"""Sign in and out. Failed sign-ins are rate-limited per client address (an IPv6 one by its /64) and per
account name, and audited; a refusal made before the password is checked is audited boundedly
(``sharebus_portal.signin_refusals``)."""

from __future__ import annotations

import logging
import math
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from sharebus_core.client_address import client_bucket
from sharebus_portal.audit import portal_fact
from sharebus_portal.password_checks import PortalBusy
from sharebus_portal.sessions import signin_keys
from sharebus_portal.signin_refusals import Repeats
from sharebus_portal.state import Portal
from sharebus_portal.web import SESSION_COOKIE, PortalDep, current_viewer, form_checked, render, signed_in

# A turn for a password check usually frees within a second or two.
BUSY_RETRY_AFTER_S = 2

router = APIRouter()
log = logging.getLogger("sharebus.portal")


def _safe_next(target: str | None) -> str:
    # Only paths of this site: an open redirect would make the sign-in page a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/catalogue"


def _from_another_site(request: Request) -> bool:
    """Whether the browser says this post was sent by a page of another site (login CSRF).

    The sign-in form has no session yet, so no CSRF token: a page elsewhere could post its own
    account's credentials and sign the official's browser in as that account. ``Sec-Fetch-Site`` is
    set by the browser and no page can change it, so it decides when sent; older browsers send
    ``Origin`` with every form post, which must then be this host. A client that sends neither
    (no browser: the tests, curl) has no cookies a forged page could ride on.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return (
        origin.strip().lower() == "null"
        or urlsplit(origin.strip()).netloc.lower() != (request.headers.get("host") or "").lower()
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if current_viewer(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    app: PortalDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    # The form bounds the name (64 characters), so no fact holds more of a sender's choosing.
    username = username.strip().lower()
    address = request.client.host if request.client else "unknown"
    response = await _sign_in(request, app, username, password, address, _safe_next(next))
    repeats = app.limiter.refusals.passed()
    if repeats:
        # Written after the answer is sent: no sign-in waits on Kafka for others' refusals.
        response.background = BackgroundTask(_audit_repeats, app, request.method, request.url.path, repeats)
    return response


async def _sign_in(request: Request, app: PortalDep, username: str, password: str, address: str, next: str) -> Response:
    if _from_another_site(request):
        await _refused(app, request, username, address, "cross_site")
        message = "The sign-in form did not come from this portal; open the portal and sign in there."
        return render(request, "error.html", None, status_code=403, code=403, message=message)
    keys = signin_keys(username, address)
    # Counted as a failure from here until the password proves right.
    wait_s, attempt = app.limiter.begin(*keys)
    if wait_s > 0:
        await _refused(app, request, username, address, "rate_limited")
        response = render(
            request,
            "login.html",
            None,
            status_code=429,
            next=next,
            error=f"Too many failed sign-ins; try again in {math.ceil(wait_s)} s. 登录失败次数过多, 请稍后再试。",
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
        return response
    try:
        account = await app.checks.verify(app.accounts.verify, username, password)
    except PortalBusy:
        # Not a failure of the account's or the address's: the attempt is taken back.
        app.limiter.withdraw(attempt, *keys)
        await _refused(app, request, username, address, "busy")
        response = render(
            request,
            "login.html",
            None,
            status_code=503,
            next=next,
            error="The portal is checking many sign-ins now; try again in a few seconds. 系统繁忙, 请稍后再试。",
        )
        response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return response
    if account is None:
        await _audit_failure(app, request, username, address, "bad_credentials")
        return render(
            request,
            "login.html",
            None,
            status_code=401,
            next=next,
            error="Wrong user name or password. 用户名或密码错误。",
        )
    app.limiter.succeeded(keys[0], keys[1], attempt)
    session_id, _session = app.sessions.start(account)
    redirect = RedirectResponse(next, status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        secure=app.settings.cookie_secure,
        samesite="strict",
        path="/",
        max_age=int(app.settings.session_ttl_s),
    )
    return redirect


async def _refused(app: PortalDep, request: Request, username: str, address: str, reason: str) -> None:
    """Audits a sign-in refused before its password is checked, which costs its sender nothing: only the
    first of its window per reason and client bucket (``RefusalTally``), and, like every refusal, before
    answering; the rest are counted, and said in one fact when their window has passed."""
    if app.limiter.refusals.refused(reason, client_bucket(address), username):
        await _audit_failure(app, request, username, address, reason)


async def _audit_failure(app: PortalDep, request: Request, username: str, client: str, reason: str) -> None:
    fact = portal_fact(
        action="portal.signin",
        username=username,
        department=None,
        method=request.method,
        path=request.url.path,
        reason=reason,
        client=client,
    )
    await run_in_threadpool(app.audit.write, fact)


def _audit_repeats(app: Portal, method: str, path: str, repeats: list[Repeats]) -> None:
    # After the answer, so nothing else would say it: a fact that cannot be written is logged loudly.
    for repeated in repeats:
        fact = portal_fact(
            action="portal.signin",
            username=repeated.username,
            department=None,
            method=method,
            path=path,
            reason=repeated.reason,
            client=repeated.client,
            extra={"repeats": repeated.count, "window_s": repeated.window_s},
        )
        try:
            app.audit.write(fact)
        except Exception:
            log.exception("could not audit %d refused sign-ins from %s", repeated.count, repeated.client)


@router.post("/logout")
async def logout(request: Request, app: PortalDep) -> Response:
    viewer = signed_in(request)
    await form_checked(request, viewer)
    app.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=app.settings.cookie_secure, httponly=True, samesite="strict"
    )
    return response
