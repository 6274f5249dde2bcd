"""Periodic batches delivered to the caller's system: list them, fetch one as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from sharebus_gateway.auth import CallerDep
from sharebus_gateway.batches import Batch, BatchUnavailable, batch_lines, read_batches
from sharebus_gateway.feed_api import own_system
from sharebus_gateway.json_avro import to_json
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute

router = APIRouter(tags=["batches"], route_class=StrictJsonRoute)


async def _batches(gw: Gateway, system: str) -> dict[str, Batch]:
    try:
        return await run_in_threadpool(read_batches, gw.settings.kafka, gw.topics.delivery(system), system)
    except BatchUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


@router.get(
    "/v1/systems/{system}/batches",
    summary="Periodic batches delivered to your system",
    responses={403: {"description": "not your system"}},
)
async def list_batches(
    system: str, request: Request, who: CallerDep, gw: Annotated[Gateway, Depends(gateway)]
) -> list[dict[str, Any]]:
    await own_system(gw, who, request, system, "batches")
    return [batch.summary() for batch in (await _batches(gw, system)).values()]


@router.get(
    "/v1/systems/{system}/batches/{batch_id}",
    summary="One batch as JSON lines: one record per line, in seq order",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
        403: {"description": "not your system"},
        404: {"description": "no such batch"},
        409: {"description": "the batch is not complete yet"},
    },
)
async def fetch_batch(
    system: str, batch_id: str, request: Request, who: CallerDep, gw: Annotated[Gateway, Depends(gateway)]
) -> StreamingResponse:
    await own_system(gw, who, request, system, "batches")
    batch = (await _batches(gw, system)).get(batch_id)
    if batch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such batch delivered to your system")
    if not batch.complete:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"batch incomplete: {len(batch.records)} of {batch.count} records so far"
        )
    topic = gw.topics.delivery(system)

    def lines() -> Iterator[bytes]:
        for line in batch_lines(batch, gw.settings.registry_url, gw.settings.registry_auth, topic):
            yield (json.dumps(to_json(line), ensure_ascii=False) + "\n").encode()

    headers = {"sharebus-batch-count": str(batch.count), "sharebus-batch-id": batch.batch_id}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)
