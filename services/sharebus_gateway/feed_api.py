"""The real-time feed of one system's deliveries, over Server-Sent Events and WebSocket.

Each event carries its position as its id (``positions``); SSE clients resume with ``Last-Event-ID``
(which wins over ``?from=``, since a browser reconnects to the same URL), WebSocket clients with
``?from=<id>``. Without either, the feed starts at the oldest delivery kept (``from=earliest``), or
with ``from=latest`` at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, WebSocket, WebSocketDisconnect, status
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from sharebus_gateway import positions as pos
from sharebus_gateway.auth import Caller, CallerDep, authenticate, bearer_token, forbid, unauthenticated
from sharebus_gateway.feed import SLOW_CLIENT, FeedEvent, FeedSession, FeedSource, FeedUnavailable
from sharebus_gateway.limits import FeedTicket, TooManyFeeds
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute

router = APIRouter(tags=["feed"], route_class=StrictJsonRoute)

KEY_REVOKED = "key_revoked"

FromQuery = Annotated[
    str,
    Query(
        alias="from",
        max_length=20_000,
        description="`earliest` (default), `latest`, or an event id received before (partition:offset,...)",
    ),
]


async def own_system(gw: Gateway, who: Caller, connection: HTTPConnection, system: str, action: str) -> None:
    if system != who.system:
        raise await run_in_threadpool(
            forbid,
            gw,
            who,
            connection,
            action=action,
            reason="not_own_system",
            detail=f"{who.system} may only read its own {action.split('.')[0]}",
        )


async def open_session(gw: Gateway, who: Caller, system: str, start: str) -> tuple[FeedSession, FeedTicket]:
    """A feed session and its ticket (counted against the key's cap); the caller closes both."""
    try:
        ticket = gw.feeds.open(who.key_id)
    except TooManyFeeds as exc:
        if exc.per_key:
            gw.metrics.throttled.labels("feeds").inc()
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc)) from exc
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    try:
        session = await _start_session(gw, who, system, start)
    except BaseException:
        gw.feeds.close(ticket)
        raise
    return session, ticket


async def _start_session(gw: Gateway, who: Caller, system: str, start: str) -> FeedSession:
    if not gw.keys.active(who.key_id):  # revoked since it authenticated: its end signal is gone
        raise unauthenticated("the API key has been revoked")
    session = FeedSession(FeedSource(gw.settings, gw.topics.delivery(system), system), gw.settings)
    try:
        await session.open(start)
    except pos.BadPosition as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"bad feed position: {exc}") from exc
    except FeedUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return session


def key_revoked_message() -> dict[str, Any]:
    return {"reason": KEY_REVOKED, "message": "the API key of this feed was revoked; the feed is closed"}


def sse_frame(event: FeedEvent) -> bytes:
    body = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: delivery\ndata: {body}\n\n".encode()


def slow_client_message(gw: Gateway) -> dict[str, Any]:
    return {
        "reason": SLOW_CLIENT,
        "message": (
            f"the client did not keep up: nothing was taken for {gw.settings.feed_stall_timeout_s:g}s while "
            f"{gw.settings.feed_queue_size} events waited; reconnect from the last event id to resume"
        ),
    }


class SSEFeed(Response):
    """An ASGI response that writes events as they come, each write bounded by the stall timeout."""

    media_type = "text/event-stream"

    def __init__(self, gw: Gateway, session: FeedSession, ticket: FeedTicket) -> None:
        super().__init__(media_type=self.media_type)
        self.gw = gw
        self.session = session
        self.ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gw, session = self.gw, self.session
        gw.metrics.feed_connections.labels("sse").inc()
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            await self._stream(send, disconnected)
        except TimeoutError:
            gw.metrics.feed_disconnects.labels(SLOW_CLIENT).inc()
        finally:
            watcher.cancel()
            await session.close()
            gw.feeds.close(self.ticket)
            gw.metrics.feed_connections.labels("sse").dec()

    async def _write(self, send: Send, data: bytes, more: bool = True) -> None:
        # A client that does not read fills the socket, and send() then waits: bounded here.
        await asyncio.wait_for(
            send({"type": "http.response.body", "body": data, "more_body": more}), self.gw.settings.feed_stall_timeout_s
        )

    async def _stream(self, send: Send, disconnected: asyncio.Event) -> None:
        gw, session = self.gw, self.session
        await self._write(send, b": sharebus feed\n\n")
        last_write = time.monotonic()
        while not disconnected.is_set():
            event = await session.next(min(1.0, gw.settings.feed_keepalive_s))
            if self.ticket.ended.is_set():
                gw.metrics.feed_disconnects.labels(KEY_REVOKED).inc()
                body = json.dumps(key_revoked_message())
                await self._write(send, f"event: error\ndata: {body}\n\n".encode(), more=False)
                return
            if session.stalled.is_set():
                gw.metrics.feed_disconnects.labels(SLOW_CLIENT).inc()
                body = json.dumps(slow_client_message(gw))
                await self._write(send, f"event: error\ndata: {body}\n\n".encode(), more=False)
                return
            if event is None:
                if time.monotonic() - last_write >= gw.settings.feed_keepalive_s:
                    await self._write(send, b": keep-alive\n\n")
                    last_write = time.monotonic()
                continue
            await self._write(send, sse_frame(event))
            last_write = time.monotonic()
            gw.metrics.feed_events.labels("sse").inc()


@router.get(
    "/v1/systems/{system}/feed",
    summary="Your system's deliveries as Server-Sent Events (granted fields only)",
    response_class=StreamingResponse,
    response_model=None,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`event: delivery` per record, `id:` its position; `event: error` before a disconnect",
        },
        400: {"description": "bad position"},
        403: {"description": "not your system"},
        429: {"description": "this API key has as many open feeds as it may, or sent too many requests"},
        503: {"description": "the feed cannot be read now, or too many connections"},
    },
)
async def sse_feed(
    system: str,
    request: Request,
    who: CallerDep,
    gw: Annotated[Gateway, Depends(gateway)],
    start: FromQuery = pos.EARLIEST,
) -> SSEFeed:
    await own_system(gw, who, request, system, "feed")
    last_event_id = request.headers.get("last-event-id")
    session, ticket = await open_session(gw, who, system, last_event_id or start)
    return SSEFeed(gw, session, ticket)


async def _deny(websocket: WebSocket, exc: HTTPException) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": exc.detail}, exc.status_code))
    else:
        await websocket.close(code=4000 + exc.status_code, reason=str(exc.detail)[:120])


@router.websocket("/v1/systems/{system}/feed/ws")
async def ws_feed(websocket: WebSocket, system: str, start: FromQuery = pos.EARLIEST) -> None:
    """Messages are JSON: ``{"id": <position>, "event": "delivery", "delivery": {...}}``. A slow client is
    closed with code 1008 and reason ``slow_client``; a feed whose API key is revoked, with 1008 and
    ``key_revoked``."""
    gw = gateway(websocket)
    try:
        who = authenticate(websocket, bearer_token(websocket))
        await own_system(gw, who, websocket, system, "feed")
        session, ticket = await open_session(gw, who, system, start)
    except HTTPException as exc:
        await _deny(websocket, exc)
        return
    try:
        await websocket.accept()
    except BaseException:
        await session.close()
        gw.feeds.close(ticket)
        raise
    gw.metrics.feed_connections.labels("websocket").inc()
    disconnected = asyncio.Event()

    async def watch_disconnect() -> None:
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            disconnected.set()

    watcher = asyncio.create_task(watch_disconnect())
    try:
        await _ws_stream(gw, websocket, session, ticket, disconnected)
    except TimeoutError:
        gw.metrics.feed_disconnects.labels(SLOW_CLIENT).inc()
    except (WebSocketDisconnect, OSError, RuntimeError):
        # The client went away mid-send; only this connection ends.
        pass
    finally:
        watcher.cancel()
        await session.close()
        gw.feeds.close(ticket)
        gw.metrics.feed_connections.labels("websocket").dec()


async def _ws_stream(
    gw: Gateway, websocket: WebSocket, session: FeedSession, ticket: FeedTicket, disconnected: asyncio.Event
) -> None:
    while not disconnected.is_set():
        event = await session.next(1.0)
        if ticket.ended.is_set():
            gw.metrics.feed_disconnects.labels(KEY_REVOKED).inc()
            await websocket.close(code=1008, reason=f"{KEY_REVOKED}: the API key of this feed was revoked")
            return
        if session.stalled.is_set():
            gw.metrics.feed_disconnects.labels(SLOW_CLIENT).inc()
            await websocket.close(code=1008, reason=f"{SLOW_CLIENT}: resume from the last id")
            return
        if event is None:
            continue
        message = {"id": event.id, "event": "delivery", "delivery": event.data}
        await asyncio.wait_for(
            websocket.send_text(json.dumps(message, ensure_ascii=False)), gw.settings.feed_stall_timeout_s
        )
        gw.metrics.feed_events.labels("websocket").inc()
