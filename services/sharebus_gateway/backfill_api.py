"""Backfill requests over HTTP: a department asks for a class's retained history for one of its systems.

The same rules as ``sharebus_ops.backfill`` (the system must be entitled now, by the gateway's followed
grants); the requesting department is the API key's, never a typed word. Requests of other departments
are 404. Reads answer from the gateway's followed view of the backfill topic (``BackfillView``), never
by reading the topic per request; a request logged here is in the caller's next read.
"""

from __future__ import annotations

from typing import Annotated

from confluent_kafka import KafkaException
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from sharebus_core.backfill_log import BackfillEvent
from sharebus_core.catalogue import UnknownDataClass
from sharebus_core.grant_log import GrantLogError
from sharebus_core.produce import ProduceFailed
from sharebus_core.topic_reader import TopicReadError
from sharebus_gateway.auth import CallerDep, forbid
from sharebus_gateway.backfills_view import BackfillViewUnavailable
from sharebus_gateway.publish import normalise_class_code
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute
from sharebus_ops.backfill import request_backfill
from sharebus_rules.grant_workflow import GrantRefused

router = APIRouter(prefix="/v1/backfills", tags=["backfills"], route_class=StrictJsonRoute)

GwDep = Annotated[Gateway, Depends(gateway)]
_UNAVAILABLE = (GrantLogError, TopicReadError, ProduceFailed, KafkaException, BackfillViewUnavailable)


class BackfillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_class: Annotated[str, Field(min_length=1, max_length=64)]
    system: Annotated[str, Field(min_length=1, max_length=64, description="the receiving system, of your department")]


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the backfill log cannot be used now: {exc}")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Ask for the retained history of a class, for one of your department's systems",
    responses={403: {"description": "the system is not your department's"}, 422: {"description": "refused"}},
)
def request(body: BackfillRequest, who: CallerDep, http: Request, gw: GwDep) -> BackfillEvent:
    code = normalise_class_code(body.data_class)
    owner = gw.catalogue.department_of_system.get(body.system)
    if owner is not None and owner != who.department:
        raise forbid(
            gw,
            who,
            http,
            action="backfill.request",
            reason="not_own_department",
            detail=f"{who.department} may only ask for backfills to its own systems",
            data_class=code,
        )
    try:
        event = request_backfill(
            gw.catalogue,
            gw.settings.kafka,
            gw.topics,
            who.department,
            body.system,
            code,
            verifier=gw.grants.control.verifier,
            grants_now=gw.grants.latest(),
        )
        gw.backfills.written(event.request_id)
    except (GrantRefused, UnknownDataClass) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"refused: {exc.args[0]}") from exc
    except _UNAVAILABLE as exc:
        raise _unavailable(exc) from exc
    return event


@router.get("", summary="Your department's backfill requests, latest state each")
def list_requests(who: CallerDep, gw: GwDep) -> list[BackfillEvent]:
    try:
        return gw.backfills.of_department(gw.catalogue, who.department)
    except _UNAVAILABLE as exc:
        raise _unavailable(exc) from exc


@router.get("/{request_id}", summary="One request's latest state", responses={404: {"description": "not yours"}})
def show(request_id: str, who: CallerDep, gw: GwDep) -> BackfillEvent:
    try:
        event = gw.backfills.get(request_id)
    except _UNAVAILABLE as exc:
        raise _unavailable(exc) from exc
    if event is None or gw.catalogue.department_of_system.get(event.consumer) != who.department:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such backfill request of your department")
    return event
