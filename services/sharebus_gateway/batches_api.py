"""Periodic batches delivered to the caller's system: list them, fetch one as JSON lines.

Each request reads one bounded page of the delivery topic (``batches.read_batches``): by default its
newest ``BATCH_PAGE_MAX_RECORDS`` records, or from ``?from=`` (an event id, or ``earliest``), up to that
many records or ``BATCH_PAGE_MAX_BYTES``. The answer's ``sharebus-next`` header is where the page ended
(the next page's ``?from=``) and ``sharebus-more`` whether it stopped at a limit before the end. At most
``BATCH_PAGES_AT_ONCE`` pages are read at once in the gateway; one more is 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from sharebus_gateway import positions as pos
from sharebus_gateway.auth import CallerDep
from sharebus_gateway.batches import BatchPage, BatchUnavailable, PageLimits, batch_lines, read_batches
from sharebus_gateway.feed_api import own_system
from sharebus_gateway.json_avro import to_json
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute

router = APIRouter(tags=["batches"], route_class=StrictJsonRoute)


From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=65_536,
        description="where the page starts: an event id (`sharebus-next` of the page before) or `earliest`; "
        "by default the newest records",
    ),
]


async def _page(gw: Gateway, system: str, start: str | None) -> BatchPage:
    if not gw.batch_pages.acquire(blocking=False):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "too many batch pages are being read at once; try again shortly",
            headers={"Retry-After": "1"},
        )
    limits = PageLimits(gw.settings.batch_page_max_records, gw.settings.batch_page_max_bytes)
    try:
        topic = gw.topics.delivery(system)
        return await run_in_threadpool(read_batches, gw.settings.kafka, topic, system, start, limits)
    except pos.BadPosition as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    except BatchUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    finally:
        gw.batch_pages.release()


def _page_headers(page: BatchPage) -> dict[str, str]:
    return {"sharebus-next": pos.encode(page.next), "sharebus-more": "true" if page.more else "false"}


@router.get(
    "/v1/systems/{system}/batches",
    summary="Periodic batches delivered to your system",
    responses={403: {"description": "not your system"}},
)
async def list_batches(
    system: str, request: Request, who: CallerDep, gw: Annotated[Gateway, Depends(gateway)], start: From = None
) -> JSONResponse:
    await own_system(gw, who, request, system, "batches")
    page = await _page(gw, system, start)
    return JSONResponse([batch.summary() for batch in page.batches.values()], headers=_page_headers(page))


@router.get(
    "/v1/systems/{system}/batches/{batch_id}",
    summary="One batch as JSON lines: one record per line, in seq order",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
        403: {"description": "not your system"},
        404: {"description": "no such batch in the page read (give an earlier ?from=)"},
        409: {"description": "the batch is not complete yet"},
    },
)
async def fetch_batch(
    system: str,
    batch_id: str,
    request: Request,
    who: CallerDep,
    gw: Annotated[Gateway, Depends(gateway)],
    start: From = None,
) -> StreamingResponse:
    await own_system(gw, who, request, system, "batches")
    page = await _page(gw, system, start)
    batch = page.batches.get(batch_id)
    if batch is None:
        where = "the newest records" if start is None else f"the page from {start[:80]!r}"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such batch delivered to your system in {where}")
    if not batch.complete:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"batch incomplete: {len(batch.records)} of {batch.count} records so far in the page read",
            headers=_page_headers(page),
        )
    topic = gw.topics.delivery(system)

    def lines() -> Iterator[bytes]:
        for line in batch_lines(batch, gw.settings.registry_url, gw.settings.registry_auth, topic):
            yield (json.dumps(to_json(line), ensure_ascii=False) + "\n").encode()

    headers = {"sharebus-batch-count": str(batch.count), "sharebus-batch-id": batch.batch_id, **_page_headers(page)}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)
