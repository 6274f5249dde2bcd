"""The gateway app: routers, health, metrics, and the followers that keep keys and grants live."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.compacted_log import ensure_compacted_topic
from sharebus_core.control_log import ControlRejections
from sharebus_core.scrape_auth import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS
from sharebus_core.signing import ControlKeys
from sharebus_core.topics import TopicNames
from sharebus_disputes import DisputeService, DisputeSettings
from sharebus_gateway import (
    backfill_api,
    batches_api,
    catalogue_api,
    disputes_api,
    feed_api,
    grants_api,
    identity_api,
    open_api,
    publish,
    standards_api,
)
from sharebus_gateway.audit import AuditWriter
from sharebus_gateway.backfills_view import BackfillView
from sharebus_gateway.body_limit import BodyLimit
from sharebus_gateway.broker_probe import BrokerProbe
from sharebus_gateway.idempotency import AnsweredKeys
from sharebus_gateway.keys import KeyStore, KeyView
from sharebus_gateway.limits import OpenFeeds, TokenBuckets
from sharebus_gateway.metrics import GatewayMetrics
from sharebus_gateway.open_view import OpenData
from sharebus_gateway.settings import GatewaySettings
from sharebus_gateway.state import Gateway, PublisherPool
from sharebus_grants import FollowedGrants, GrantService, GrantsSettings
from sharebus_provision import audit_topics, ensure_topics

log = logging.getLogger("sharebus.gateway")

DESCRIPTION = """\
The HTTP front door to the sharebus: publish records, follow your system's deliveries (SSE or
WebSocket), fetch periodic batches, browse the catalogue and run the grant workflow. Every path goes
through the same catalogue, registry, rules, audit and counters as the Python SDK.

Authenticate with `Authorization: Bearer <key>`; keys are issued per system with
`sharebus apikey issue --system <system>`.
"""


def _route_label(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    # Only route templates, never raw paths: the label set stays bounded whatever clients send.
    return path if isinstance(path, str) else "unmatched"


def build_gateway(
    settings: GatewaySettings, catalogue: Catalogue, registry: CollectorRegistry, control: ControlKeys
) -> Gateway:
    topics = TopicNames(settings.namespace)
    audit = AuditWriter(settings.kafka, topics.audit_facts)
    # Forged grant or key events: ignored by the followers, counted, logged and audited as denials.
    rejections = ControlRejections("gateway", registry, audit.write)
    # Requests answer from this view, never by reading the whole log (a key could make the gateway
    # verify every event of it, 50 times a second); a write waits until the view has read it back.
    grant_view = FollowedGrants(settings.kafka, topics.grants, control.verifier, rejections)
    grants = GrantService(
        catalogue,
        settings.kafka,
        topics.grants,
        control=control,
        answer_deadline_working_days=GrantsSettings().answer_deadline_working_days,
        source=grant_view,
    )
    feeds = OpenFeeds(settings.feed_max_per_key, settings.feed_max_connections)
    metrics = GatewayMetrics(registry)
    open_keys = KeyStore(catalogue, settings.kafka, topics.api_keys, control=control)
    open_data = OpenData(settings, catalogue, topics, metrics, open_keys)

    def on_revoked(key_id: str) -> None:
        # Department and open-data feeds are counted apart; a key id is in at most one of them.
        feeds.end_key(key_id)
        open_data.feeds.end_key(key_id)

    return Gateway(
        settings=settings,
        catalogue=catalogue,
        topics=topics,
        # A revoked key's open feeds end within seconds: the key follower tells them.
        keys=KeyView(settings.kafka, topics.api_keys, control.verifier, rejections, on_revoked=on_revoked),
        grant_follower=grant_view.follower,
        grants=grants,
        audit=audit,
        metrics=metrics,
        publishers=PublisherPool(settings, catalogue),
        rate_limits=TokenBuckets(settings.rate_per_s, settings.rate_burst),
        feeds=feeds,
        answered=AnsweredKeys(settings.idempotency_window),
        # Its own settings (SHAREBUS_DISPUTES_*); the gateway's identity and namespace.
        disputes=DisputeService(
            catalogue, settings.kafka, topics, DisputeSettings(namespace=settings.namespace), audit.write, registry
        ),
        open_data=open_data,
        broker=BrokerProbe(settings.kafka.admin, interval_s=settings.broker_probe_interval_s),
        backfills=BackfillView(settings.kafka, topics.backfill),
        batch_pages=threading.BoundedSemaphore(settings.batch_pages_at_once),
    )


def create_app(settings: GatewaySettings | None = None, catalogue: Catalogue | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    catalogue = catalogue or load_catalogue(settings.catalogue_dir)
    registry = CollectorRegistry()
    # Loaded here, before serving: without the control plane's keys the gateway refuses to start
    # (SigningKeyError), since it could neither trust a key or grant nor sign a decision.
    control = settings.control_keys(sign=True)
    # /metrics answers only the bus's scrape token (its labels name systems and classes): no token,
    # no start (ScrapeTokenError). API keys do not open it.
    scrape_token = settings.scrape_auth()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = build_gateway(settings, catalogue, registry, control)
        access = settings.kafka
        # The facts topic is the router's too: created with the same spec, whoever starts first.
        await run_in_threadpool(ensure_topics, access, audit_topics(gw.topics))
        await run_in_threadpool(ensure_compacted_topic, access, gw.topics.api_keys)
        gw.keys.follower.start()
        gw.grant_follower.start()
        await run_in_threadpool(gw.disputes.start)
        gw.open_data.view.start()
        gw.broker.start()
        gw.backfills.start()
        app.state.gateway = gw
        try:
            yield
        finally:
            gw.backfills.stop()
            gw.broker.stop()
            gw.disputes.stop()
            gw.open_data.view.stop()
            gw.keys.follower.stop()
            gw.grant_follower.stop()
            gw.publishers.close()
            gw.audit.close()

    app = FastAPI(title="sharebus gateway", version="1", description=DESCRIPTION, lifespan=lifespan)
    for module in (
        publish,
        feed_api,
        batches_api,
        catalogue_api,
        grants_api,
        backfill_api,
        identity_api,
        disputes_api,
        standards_api,
        open_api,
    ):
        app.include_router(module.router)

    def body_refused() -> None:
        gw: Gateway | None = getattr(app.state, "gateway", None)
        if gw is not None:
            gw.metrics.throttled.labels("body_too_large").inc()

    # Before routing and every handler: an oversize body is refused before anything reads or parses it.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, on_refused=body_refused)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_label(request)
        metrics: GatewayMetrics = request.app.state.gateway.metrics
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged in full here; the client learns nothing of the internals.
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Broker reachable, catalogue loaded, grant and key views caught up",
        responses={503: {"description": "not ready; the body says what is missing"}},
    )
    def readyz(request: Request) -> JSONResponse:
        # Only state the background readers keep: this door is open to anyone, so it must cost nothing.
        gw: Gateway = request.app.state.gateway
        checks: dict[str, Any] = {
            "broker": gw.broker.reachable,
            "catalogue": len(gw.catalogue.data_classes) > 0,
            "grants_caught_up": gw.grant_follower.caught_up.is_set(),
            "api_keys_caught_up": gw.keys.follower.caught_up.is_set(),
            # The dispute view, not the delivery index: that one may take long to build at city scale,
            # and a dispute opened meanwhile waits for it or is answered 503 (never wrongly refused).
            "disputes_caught_up": gw.disputes.view.follower.caught_up.is_set(),
        }
        ready = all(checks.values())
        # Reported, not required: the backfill desk answers 503 until its view is caught up, and a bus
        # without the topic yet must still publish and deliver.
        checks["backfills_caught_up"] = gw.backfills.follower.caught_up.is_set()
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    def metrics(request: Request) -> Response:
        if not scrape_token.admits(request.headers.get("Authorization")):
            return Response(UNAUTHORIZED_BODY, status_code=401, headers=UNAUTHORIZED_HEADERS)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
