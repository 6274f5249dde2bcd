"""The portal app: pages, the grant follower, the audit writer, and the security headers on every answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.compacted_log import LogFollower
from sharebus_core.control_log import ControlRejections
from sharebus_core.scrape_auth import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS
from sharebus_core.signing import SigningKeyError
from sharebus_core.topics import TopicNames
from sharebus_disputes.log import ensure_dispute_topic
from sharebus_gateway.audit import AuditWriter
from sharebus_gateway.body_limit import BodyLimit
from sharebus_grants import FollowedGrants, GrantService, GrantsSettings
from sharebus_portal import (
    apply_views,
    assessment_views,
    auth_views,
    bureau_views,
    catalogue_views,
    data_views,
    grants_views,
    inbox_views,
)
from sharebus_portal.accounts import AccountStore
from sharebus_portal.chain import ChainWatch
from sharebus_portal.disputes import DisputeView
from sharebus_portal.grant_conflicts import StalePage
from sharebus_portal.grant_view import GrantView
from sharebus_portal.reports import ReportCache
from sharebus_portal.sessions import SessionStore, SignInLimiter
from sharebus_portal.settings import PortalSettings
from sharebus_portal.state import OpenPreviews, Portal
from sharebus_portal.web import BadCsrf, Forbidden, SignInRequired, current_viewer, render
from sharebus_report import build_report

log = logging.getLogger("sharebus.portal")

# No inline script or style: every script is a file of this site, so an injected tag cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def build_portal(settings: PortalSettings, catalogue: Catalogue, registry: CollectorRegistry) -> Portal:
    topics = TopicNames(settings.namespace)
    # The control plane's keys: grant decisions are signed like the gateway's and the CLI's.
    control = settings.control_keys(sign=True)
    audit = AuditWriter(settings.kafka, topics.audit_facts)
    view = GrantView(catalogue)
    disputes = DisputeView(catalogue)
    rejections = ControlRejections("portal", registry, audit.write)
    # Decisions are checked against this followed view, never a whole read of the grants log per request;
    # the same reader feeds the pages' view (with each grant's history).
    followed = FollowedGrants(settings.kafka, topics.grants, control.verifier, rejections, listener=view)
    grants = GrantService(
        catalogue,
        settings.kafka,
        topics.grants,
        control=control,
        answer_deadline_working_days=GrantsSettings().answer_deadline_working_days,
        source=followed,
    )
    try:
        audit_verifier = settings.audit_verifier()
    except SigningKeyError:
        audit_verifier = None  # the chain is still walked; the anchors are reported as unchecked
    chain = ChainWatch(
        settings.kafka, topics.audit, topics.audit_anchors, audit_verifier, settings.audit_check_interval_s
    )
    return Portal(
        settings=settings,
        catalogue=catalogue,
        topics=topics,
        accounts=AccountStore(settings.accounts_file),
        sessions=SessionStore(settings.session_ttl_s, settings.session_idle_s),
        limiter=SignInLimiter(
            settings.signin_max_failures,
            settings.signin_window_s,
            account_max_failures=settings.signin_account_max_failures,
            registry=registry,
        ),
        grants=grants,
        view=view,
        grant_follower=followed.follower,
        audit=audit,
        chain=chain,
        previews=OpenPreviews(settings.feed_max_connections),
        disputes=disputes,
        reports=ReportCache(
            lambda period: build_report(settings.kafka, topics, catalogue, period, verifier=control.verifier)
        ),
        dispute_follower=LogFollower(settings.kafka, topics.disputes, disputes.put_message, name="portal-disputes"),
    )


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, _exc: SignInRequired) -> Response:
        if request.url.path.startswith("/data/feed/"):
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", current_viewer(request), status_code=403, code=403, message=exc.detail)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, _exc: BadCsrf) -> Response:
        message = "The form has expired or did not come from this portal; reload the page and try again."
        return render(request, "error.html", current_viewer(request), status_code=403, code=403, message=message)

    @app.exception_handler(StalePage)
    async def stale_page(request: Request, exc: StalePage) -> Response:
        viewer = current_viewer(request)
        code = exc.status_code
        return render(request, "error.html", viewer, status_code=code, code=code, message=exc.message, link=exc.link)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        viewer = current_viewer(request)
        return render(
            request, "error.html", viewer, status_code=exc.status_code, code=exc.status_code, message=exc.detail
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)


Builder = Callable[[PortalSettings, Catalogue, CollectorRegistry], Portal]


def create_app(
    settings: PortalSettings | None = None, catalogue: Catalogue | None = None, build: Builder = build_portal
) -> FastAPI:
    """The portal app; ``build`` makes its state (tests pass one with in-memory grants and audit)."""
    settings = settings or PortalSettings()
    catalogue = catalogue or load_catalogue(settings.catalogue_dir)
    registry = CollectorRegistry()
    # /metrics answers only the bus's scrape token, as every service's does: no token, no start.
    scrape_token = settings.scrape_auth()
    # Built before serving: without the control plane's keys the portal refuses to start.
    state = build(settings, catalogue, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.grant_follower.start)
        if state.dispute_follower is not None:
            # A plain topic kept forever (as the gateway makes it), before the follower would make a compacted one.
            await run_in_threadpool(ensure_dispute_topic, settings.kafka, state.topics)
            await run_in_threadpool(state.dispute_follower.start)
        state.chain.start()
        app.state.portal = state
        try:
            yield
        finally:
            state.grant_follower.stop()
            if state.dispute_follower is not None:
                state.dispute_follower.stop()
            state.chain.stop()
            state.audit.close()

    app = FastAPI(title="sharebus portal", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    views = (auth_views, catalogue_views, apply_views, inbox_views, grants_views, data_views, bureau_views)
    for module in (*views, assessment_views):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    _handlers(app)
    # Added before the security headers' middleware, so that it runs inside it: a 413 carries them too.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/catalogue", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        caught_up = state.grant_follower.caught_up.is_set()
        body: dict[str, object] = {"ready": caught_up}
        # The detail only to the scrape token's holders, as every service's probes: a stranger learns readiness.
        if scrape_token.admits(request.headers.get("Authorization")):
            body.update(grants_caught_up=caught_up, previews_open=state.previews.count)
        return JSONResponse(body, status_code=200 if caught_up else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        # The portal's own counts (refused sign-ins, rejected control records) for Prometheus.
        if not scrape_token.admits(request.headers.get("Authorization")):
            return Response(UNAUTHORIZED_BODY, status_code=401, headers=UNAUTHORIZED_HEADERS)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
