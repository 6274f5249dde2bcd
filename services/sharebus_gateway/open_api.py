"""/open/v1: open data for the public. No credential for ``open`` classes; a free open-data key for
``conditional_open`` ones; a class that is not open does not exist here (404).

Only the fields that are not sensitive are ever served (``sharebus_rules.open_data``), from the followed
view of the public delivery topic (``open_view``), whatever any grant says. Every caller is rate-limited:
anonymous ones per client address, key holders per key, both more strictly than department keys.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from sharebus_core.catalogue import DataClass
from sharebus_gateway.auth import bearer_token, unauthenticated
from sharebus_gateway.feed_api import key_revoked_message
from sharebus_gateway.keys import KeyKind, KeysUnavailable
from sharebus_gateway.limits import FeedTicket, TokenBuckets, TooManyFeeds, client_bucket
from sharebus_gateway.open_view import Listener
from sharebus_gateway.publish import normalise_class_code
from sharebus_gateway.standards_api import JSON_LD, addresses
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute
from sharebus_rules.dcat import catalogue_dcat, choose_publisher
from sharebus_rules.open_data import NotOpen, PublicAccess, open_catalogue, open_schema, public_access

router = APIRouter(prefix="/open/v1", tags=["open data"], route_class=StrictJsonRoute)
GwDep = Annotated[Gateway, Depends(gateway)]
ANONYMOUS, KEY = "anonymous", "key"


@dataclass(frozen=True, slots=True)
class OpenCaller:
    """Who is asking: a client address, or an open-data key (``client`` is what the limits count by: the
    key id itself, so a revocation finds the key's feeds). ``address`` is the caller's address (IPv6 by
    /64) whatever it sends: key issuance and feeds are counted by it too."""

    client: str
    access: str
    address: str
    key_id: str | None = None


def _throttle(gw: Gateway, buckets: TokenBuckets, client: str, what: str) -> None:
    wait_s = buckets.take(client)
    if wait_s > 0:
        gw.metrics.throttled.labels("open_rate").inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many requests from {what}: at most {buckets.rate_per_s:g} a second on average, {buckets.burst} "
            "at once; retry after the Retry-After seconds",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


def open_caller(request: Request, gw: GwDep) -> OpenCaller:
    """Anonymous (by address) unless a bearer token is sent; a token that is no valid open-data key is 401."""
    token = bearer_token(request)
    address = client_bucket(request.client.host if request.client is not None else "unknown")
    if token:
        key = gw.keys.authenticate(token, KeyKind.OPEN_DATA)
        if key is None:
            raise unauthenticated("the open-data key is not valid, or has been revoked")
        _throttle(gw, gw.open_data.key_limits, key.key_id, "this open-data key")
        return OpenCaller(key.key_id, KEY, address, key.key_id)
    _throttle(gw, gw.open_data.limits, address, "your address")
    return OpenCaller(f"ip:{address}", ANONYMOUS, address)


OpenCallerDep = Annotated[OpenCaller, Depends(open_caller)]


def open_class(gw: Gateway, class_code: str) -> tuple[DataClass, PublicAccess]:
    """The class and who may read it; 404 for an unknown class and for one that is not open alike."""
    entry = gw.catalogue.data_classes.get(normalise_class_code(class_code))
    missing = HTTPException(status.HTTP_404_NOT_FOUND, "no such open data class")
    if entry is None:
        raise missing
    try:
        return entry, public_access(entry)
    except NotOpen:
        raise missing from None


def readable(gw: Gateway, who: OpenCaller, class_code: str, kind: str) -> DataClass:
    """The class, if ``who`` may read its records: a conditionally open class needs an open-data key (401)."""
    entry, access = open_class(gw, class_code)
    if access is PublicAccess.OPEN_DATA_KEY and who.access != KEY:
        raise unauthenticated(
            "this class is conditionally open: apply for a free open-data key (POST /open/v1/keys) and send it "
            "as Authorization: Bearer <key>"
        )
    gw.open_data.requests.labels(entry.code, kind, who.access).inc()
    return entry


def _summary(gw: Gateway, entry: DataClass) -> dict[str, Any]:
    return {
        "code": entry.code,
        "name": entry.name,
        "name_zh": entry.name_zh,
        "abstract": entry.abstract,
        "provider": entry.provider,
        "open_type": entry.open_type.value,
        "needs_key": entry.open_type.value == "conditional_open",
        "update_mode": entry.update.mode.value,
        "period": entry.update.period.value if entry.update.period else None,
        "fields": list(gw.open_data.view.fields[entry.code]),
    }


@router.get(
    "/catalogue.jsonld",
    summary="The open classes as DCAT-AP 3 (JSON-LD), for open-data portals to harvest",
    response_class=JSONResponse,
    responses={200: {"content": {JSON_LD: {}}}},
)
def catalogue_jsonld(who: OpenCallerDep, gw: GwDep) -> JSONResponse:
    public = open_catalogue(gw.catalogue)
    chosen = choose_publisher(gw.catalogue, gw.settings.catalogue_publisher)
    gw.open_data.requests.labels("", "catalogue", who.access).inc()
    document = catalogue_dcat(public, addresses(gw.settings), chosen, public=True)
    return JSONResponse(document, media_type=JSON_LD)


@router.get("/classes", summary="The open data classes (no key needed to list them)")
def classes(who: OpenCallerDep, gw: GwDep) -> list[dict[str, Any]]:
    return [_summary(gw, gw.catalogue.data_classes[code]) for code in gw.open_data.view.fields]


@router.get(
    "/classes/{class_code:path}/schema",
    summary="An open class's Avro schema: only the fields that are not sensitive",
    responses={404: {"description": "no such open class"}},
)
def schema(class_code: str, who: OpenCallerDep, gw: GwDep) -> dict[str, Any]:
    entry, _access = open_class(gw, class_code)
    gw.open_data.requests.labels(entry.code, "schema", who.access).inc()
    document = json.loads(gw.catalogue.schema(entry.code).text)
    return open_schema(document, gw.open_data.view.fields[entry.code])


@router.get(
    "/classes/{class_code:path}/records",
    summary="Recent records of an open class, newest first, paged (`before` = the last `seq` you have)",
    responses={
        401: {"description": "a conditionally open class needs an open-data key"},
        404: {"description": "no such open class"},
        413: {"description": "more records asked for than a page holds"},
        503: {"description": "the open-data view is still catching up"},
    },
)
def records(
    class_code: str,
    who: OpenCallerDep,
    gw: GwDep,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 50,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    entry = readable(gw, who, class_code, "records")
    settings = gw.settings
    if limit > settings.open_page_max:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"a page holds at most {settings.open_page_max} records; ask for fewer and page on with `before`",
        )
    if not gw.open_data.view.caught_up.is_set():
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the open-data view is still catching up; retry")
    page = gw.open_data.view.page(entry.code, before, limit)
    body, served = fit_to_limit(entry.code, page, limit, settings.open_max_response_bytes)
    gw.open_data.served.labels(entry.code, "records").inc(served)
    return JSONResponse(body)


_ENVELOPE = 200
OMITTED = "the record is larger than the response limit; its value is left out"


def _size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, ensure_ascii=False).encode()) + 1


def fit_to_limit(code: str, page: list[dict[str, Any]], limit: int, max_bytes: int) -> tuple[dict[str, Any], int]:
    """The page cut short to fit the response limit (the rest stays for the next page), and its size.

    A record larger than the limit on its own is served without its value, with a note: else no page
    could ever get past it.
    """
    kept: list[dict[str, Any]] = []
    size = _ENVELOPE
    for whole in page:
        item, item_size = whole, _size(whole)
        if _ENVELOPE + item_size > max_bytes:
            item = {**{k: v for k, v in whole.items() if k != "value"}, "value": None, "omitted": OMITTED}
            item_size = _size(item)
        size += item_size
        if size > max_bytes:
            break
        kept.append(item)
    cut = len(kept) < len(page)
    # More may be older than the last one served: a full page, or one cut short to fit.
    more = cut or len(page) == limit
    body = {
        "data_class": code,
        "records": kept,
        "next_before": kept[-1]["seq"] if more and kept else None,
        "cut_to_fit": cut,
    }
    return body, len(kept)


class KeyApplication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holder: Annotated[str, Field(min_length=1, max_length=200, description="who applies (person or body)")]
    purpose: Annotated[str, Field(min_length=1, max_length=2000, description="what the data will be used for")]
    contact: Annotated[str | None, Field(max_length=200, description="how to reach the holder")] = None


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    summary="Apply for a free open-data key (for conditionally open classes); the token is shown once",
    responses={429: {"description": "too many requests from your address"}, 503: {"description": "keys unavailable"}},
)
async def apply_for_key(body: KeyApplication, who: OpenCallerDep, gw: GwDep) -> dict[str, Any]:
    # Counted by address whatever token is sent: a key must not buy more keys. Each key is a record on the
    # control log that every gateway keeps, so the active ones are capped as well.
    _throttle(gw, gw.open_data.issuance, who.address, "your address (open-data key applications)")
    if gw.keys.count_active(KeyKind.OPEN_DATA) >= gw.settings.open_keys_max:
        gw.metrics.throttled.labels("open_keys").inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"no more open-data keys can be issued: {gw.settings.open_keys_max} are active, the most this bus "
            "holds; ask the data bureau",
        )
    try:
        issued = await run_in_threadpool(gw.open_data.issue, body.holder.strip(), body.purpose.strip(), body.contact)
    except KeysUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "open-data keys cannot be issued now") from exc
    gw.open_data.requests.labels("", "key_issued", who.access).inc()
    key = issued.key
    return {
        "key_id": key.key_id,
        "token": issued.token.get_secret_value(),
        "holder": key.holder,
        "purpose": key.purpose,
        "created_at": key.created_at.isoformat(),
    }


@router.get(
    "/classes/{class_code:path}/feed",
    summary="New records of an open class as Server-Sent Events",
    response_model=None,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        401: {"description": "a conditionally open class needs an open-data key"},
        404: {"description": "no such open class"},
        429: {"description": "too many open feeds from you, or too many requests"},
        503: {"description": "too many feeds on this gateway"},
    },
)
async def feed(class_code: str, who: OpenCallerDep, gw: GwDep) -> Response:
    entry = readable(gw, who, class_code, "feed")
    try:
        ticket = gw.open_data.feeds.open(who.client, address=who.address)
    except TooManyFeeds as exc:
        gw.metrics.throttled.labels("open_feeds").inc()
        code = status.HTTP_429_TOO_MANY_REQUESTS if exc.per_key else status.HTTP_503_SERVICE_UNAVAILABLE
        raise HTTPException(code, str(exc).replace("this API key", "you")) from exc
    if who.key_id is not None and not gw.keys.active(who.key_id):  # revoked since it authenticated
        gw.open_data.feeds.close(ticket)
        raise unauthenticated("the open-data key has been revoked")
    listener = gw.open_data.view.listen(entry.code, gw.settings.feed_queue_size)
    return OpenFeed(gw, listener, ticket, who.key_id)


@router.get(
    "/classes/{class_code:path}",
    summary="One open class: what it holds, how often it changes, its open fields, whether a key is needed",
    responses={404: {"description": "no such open class"}},
)
def one_class(class_code: str, who: OpenCallerDep, gw: GwDep) -> dict[str, Any]:
    # Registered last: the path converter would otherwise take the /schema, /records and /feed paths.
    entry, _access = open_class(gw, class_code)
    gw.open_data.requests.labels(entry.code, "class", who.access).inc()
    base = f"/open/v1/classes/{entry.code}"
    return {
        **_summary(gw, entry),
        "links": {"schema": f"{base}/schema", "records": f"{base}/records", "feed": f"{base}/feed"},
    }


class OpenFeed(Response):
    """Writes an open class's new records as they arrive; a client that falls behind is told and closed."""

    media_type = "text/event-stream"

    def __init__(self, gw: Gateway, listener: Listener, ticket: FeedTicket, key_id: str | None) -> None:
        super().__init__(media_type=self.media_type)
        self.gw, self.listener, self.ticket, self.key_id = gw, listener, ticket, key_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gw = self.gw
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch_disconnect())
        gw.metrics.feed_connections.labels("open_sse").inc()
        try:
            headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await self._stream(send, disconnected)
        except TimeoutError:
            gw.metrics.feed_disconnects.labels("slow_client").inc()
        finally:
            watcher.cancel()
            gw.open_data.view.unlisten(self.listener)
            gw.open_data.feeds.close(self.ticket)
            gw.metrics.feed_connections.labels("open_sse").dec()

    async def _write(self, send: Send, data: bytes, more: bool = True) -> None:
        message = {"type": "http.response.body", "body": data, "more_body": more}
        await asyncio.wait_for(send(message), self.gw.settings.feed_stall_timeout_s)

    async def _stream(self, send: Send, disconnected: asyncio.Event) -> None:
        gw, listener = self.gw, self.listener
        await self._write(send, b": sharebus open data\n\n")
        last_write = started = time.monotonic()
        while not disconnected.is_set():
            ending = self._ending(started)
            if ending is not None:
                gw.metrics.feed_disconnects.labels(ending["reason"]).inc()
                body = json.dumps(ending)
                await self._write(send, f"event: error\ndata: {body}\n\n".encode(), more=False)
                return
            try:
                item = await asyncio.wait_for(listener.queue.get(), min(1.0, gw.settings.feed_keepalive_s))
            except TimeoutError:
                if time.monotonic() - last_write >= gw.settings.feed_keepalive_s:
                    await self._write(send, b": keep-alive\n\n")
                    last_write = time.monotonic()
                continue
            data = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            await self._write(send, f"id: {item['seq']}\nevent: record\ndata: {data}\n\n".encode())
            last_write = time.monotonic()
            gw.open_data.served.labels(listener.data_class, "feed").inc()

    def _ending(self, started: float) -> dict[str, Any] | None:
        """Why the feed must end now, or None: its key was revoked, it fell behind, or it is too old."""
        gw = self.gw
        # The ticket is ended by the key follower; the check of the view covers a revocation read before
        # the feed was registered.
        if self.ticket.ended.is_set() or (self.key_id is not None and not gw.keys.active(self.key_id)):
            return key_revoked_message()
        if self.listener.overflowed.is_set():
            return {"reason": "slow_client", "message": "the client did not keep up; reconnect"}
        if time.monotonic() - started >= gw.settings.open_feed_max_lifetime_s:
            return {"reason": "lifetime", "message": "an open feed lasts a limited time; reconnect to go on"}
        return None
