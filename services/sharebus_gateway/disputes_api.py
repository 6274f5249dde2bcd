"""Disputes (共享异议) over HTTP: a receiving system opens one; the provider answers from its inbox.

The caller is its API key's system. Only a system the audit trail shows received a record may dispute
it: any other gets 403 with the reason, and a ``refused`` event. A dispute the caller's department
neither provides nor raised is 404, so its existence does not leak; answering one it raised but does
not provide is 403 (audited). A confirmed dispute's correction is published here, as the provider,
with ``sharebus-corrects: <disputed record id>``, and normal routing takes it to every system entitled
to the class now (so to every original recipient still entitled, under its current field rules).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from sharebus_disputes import DisputeLogError, DisputeNotFound, DisputeService, IndexBehind, NotReceived
from sharebus_gateway.auth import Caller, CallerDep, forbid
from sharebus_gateway.idempotency import body_digest
from sharebus_gateway.json_avro import validate_batch
from sharebus_gateway.publish import normalise_class_code, require_owning_system
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute
from sharebus_rules.disputes import Dispute, DisputeRefused, DisputeState
from sharebus_sdk import PublishFailed

router = APIRouter(prefix="/v1/disputes", tags=["disputes"], route_class=StrictJsonRoute)

Text = Annotated[str, Field(min_length=1, max_length=2000)]
FieldName = Annotated[str, Field(min_length=1, max_length=200)]
RecordId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class OpenDispute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_id: RecordId = Field(description="the `sharebus-record-id` of a record your system received")
    fields: list[FieldName] = Field(min_length=1, max_length=500, description="the fields you dispute")
    reason: Text
    data_class: Annotated[str | None, Field(min_length=1, max_length=64)] = Field(
        default=None,
        description="the record's class: needed when your system received that record id in several classes "
        "(record ids are unique within a class only)",
    )


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirm", "reject"]
    answer: Text = Field(description="what the provider found, or why it rejects the dispute")
    correction: dict[str, Any] | None = Field(
        default=None, description="with confirm: the corrected record (JSON), published at once"
    )


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any] = Field(description="the corrected record (JSON, as for publishing)")


class DisputeOut(BaseModel):
    dispute: dict[str, Any]
    state: DisputeState
    overdue: bool


GwDep = Annotated[Gateway, Depends(gateway)]


def _service(gw: Gateway) -> DisputeService:
    return gw.disputes


def _out(gw: Gateway, dispute: Dispute) -> DisputeOut:
    return DisputeOut(
        dispute=dispute.latest.model_dump(mode="json"),
        state=dispute.state,
        overdue=dispute.is_past_deadline(_service(gw).now()),
    )


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"disputes are unavailable now: {exc}")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Dispute a record your system received (by its record id)",
    responses={
        403: {"description": "your system never received that record (the audit trail shows no delivery)"},
        422: {
            "description": "no reason, fields the class does not have, or a record id your system received "
            "in several classes without the class named"
        },
        503: {"description": "the index of deliveries is catching up, or Kafka is unavailable"},
    },
)
def open_dispute(body: OpenDispute, who: CallerDep, gw: GwDep) -> DisputeOut:
    service = _service(gw)
    try:
        event = service.open(
            system=who.system,
            department=who.department,
            record_id=body.record_id,
            fields=body.fields,
            reason=body.reason,
            data_class=normalise_class_code(body.data_class) if body.data_class is not None else None,
        )
    except NotReceived as exc:
        # The refusal is audited already (the refused event's fact, mode dispute); counted here too.
        gw.metrics.forbidden.labels("dispute.open").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except DisputeRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"refused: {exc}") from exc
    except (IndexBehind, DisputeLogError) as exc:
        raise _unavailable(exc) from exc
    return _out(gw, service.visible(event.dispute_id, who.department))


@router.get("", summary="Disputes your department raised or must answer, newest first")
def list_disputes(
    who: CallerDep,
    gw: GwDep,
    role: Annotated[Literal["provider", "consumer"] | None, Query(description="provider: your inbox")] = None,
    state: DisputeState | None = None,
    overdue: Annotated[bool, Query(description="only those unanswered past their deadline")] = False,
) -> list[DisputeOut]:
    found = _service(gw).listing(who.department, role=role, state=state, overdue=overdue)
    return [_out(gw, d) for d in found]


@router.get("/inbox", summary="Disputes of records your department provides, with their deadlines")
def inbox(
    who: CallerDep,
    gw: GwDep,
    state: DisputeState | None = None,
    overdue: Annotated[bool, Query(description="only those unanswered past their deadline")] = False,
) -> list[DisputeOut]:
    return list_disputes(who, gw, role="provider", state=state, overdue=overdue)


def _visible(gw: Gateway, who: Caller, dispute_id: str) -> Dispute:
    try:
        return _service(gw).visible(dispute_id, who.department)
    except DisputeNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such dispute visible to your department") from exc


@router.get("/{dispute_id}", summary="One dispute", responses={404: {"description": "not visible to you"}})
def show(dispute_id: str, who: CallerDep, gw: GwDep) -> DisputeOut:
    return _out(gw, _visible(gw, who, dispute_id))


def _provided(gw: Gateway, who: Caller, request: Request, dispute_id: str, action: str) -> Dispute:
    """The dispute, if the caller's department provides its record; 404 if invisible, 403 (audited) if not."""
    dispute = _visible(gw, who, dispute_id)
    if dispute.latest.provider != who.department:
        raise forbid(
            gw,
            who,
            request,
            action=f"dispute.{action}",
            reason="not_provider",
            detail=f"only the provider of the record may {action} dispute {dispute_id}",
            data_class=dispute.latest.data_class,
            provider=dispute.latest.provider,
        )
    return dispute


_ANSWER_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "your department does not provide the disputed record, or (with a correction) "
        "another of its systems owns the class"
    },
    404: {"description": "not visible to you"},
    409: {"description": "the dispute is not in a state that allows it"},
    422: {"description": "an invalid correction (nothing was published)"},
}


@router.post(
    "/{dispute_id}/answer",
    summary="Confirm (and publish the correction) or reject (with a reason)",
    responses=_ANSWER_RESPONSES,
)
def answer(dispute_id: str, body: Answer, who: CallerDep, request: Request, gw: GwDep) -> DisputeOut:
    dispute = _provided(gw, who, request, dispute_id, "answer")
    confirm = body.decision == "confirm"
    if body.correction is not None and not confirm:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a correction goes with confirm, not reject")
    converted = None
    if body.correction is not None:
        # Checked before the answer is written, so a refused correction leaves the dispute as it was.
        _owning_system(gw, who, request, dispute)
        converted = _converted(gw, dispute, body.correction)
    service = _service(gw)
    try:
        service.answer(dispute, system=who.system, department=who.department, confirm=confirm, text=body.answer)
    except DisputeRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"refused: {exc}") from exc
    except DisputeLogError as exc:
        raise _unavailable(exc) from exc
    if converted is not None:
        return _correct(gw, who, dispute_id, converted)
    return _out(gw, _visible(gw, who, dispute_id))


@router.post(
    "/{dispute_id}/correction",
    summary="Publish the correction of a confirmed dispute",
    responses=_ANSWER_RESPONSES,
)
def correction(dispute_id: str, body: Correction, who: CallerDep, request: Request, gw: GwDep) -> DisputeOut:
    dispute = _provided(gw, who, request, dispute_id, "correct")
    if dispute.state is not DisputeState.ANSWERED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"dispute {dispute_id} is {dispute.state.value}; only a confirmed one is corrected",
        )
    _owning_system(gw, who, request, dispute)
    return _correct(gw, who, dispute_id, _converted(gw, dispute, body.record))


def _owning_system(gw: Gateway, who: Caller, request: Request, dispute: Dispute) -> None:
    """A correction is a publish: only the system owning the class may make it, as on /records."""
    entry = gw.catalogue.data_classes.get(dispute.latest.data_class)
    if entry is not None:  # a class gone from the catalogue is refused by _converted, with 409
        require_owning_system(gw, who, request, entry, "dispute.correct")


def _converted(gw: Gateway, dispute: Dispute, record: dict[str, Any]) -> dict[str, Any]:
    code = dispute.latest.data_class
    if code not in gw.catalogue.data_classes:
        raise HTTPException(status.HTTP_409_CONFLICT, f"the disputed record's class {code} is not in the catalogue")
    converted, problems = validate_batch([record], gw.catalogue.schema(code))
    if problems:
        detail = {
            "message": "the correction is invalid; nothing was published",
            "errors": [p.as_json() for p in problems],
        }
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
    return converted[0]


def correction_record_id(dispute_id: str, record: dict[str, Any]) -> str:
    """The record id of a dispute's correction: the same for the same corrected record.

    A correction can reach Kafka and still be answered 503 (the dispute log failed after it), and the
    provider is told to send it again; two clicks send it twice. Each repeat carries this same id, so
    every subscriber drops it (as with an Idempotency-Key), while another corrected record gets its own.
    """
    return hashlib.sha256(f"correction\0{dispute_id}\0{body_digest([record])}".encode()).hexdigest()[:32]


def _correct(gw: Gateway, who: Caller, dispute_id: str, record: dict[str, Any]) -> DisputeOut:
    """Publishes the correction as the provider (one transaction), then writes the ``corrected`` step."""
    dispute = _visible(gw, who, dispute_id)
    code, original = dispute.latest.data_class, dispute.latest.record_id
    publisher, lock = gw.publishers.get(who.department)
    with lock:
        try:
            with publisher.transaction(gw.settings.publish_timeout_s):
                record_id = publisher.publish(
                    code,
                    record,
                    trace_id=f"dispute-{dispute_id}",
                    record_id=correction_record_id(dispute_id, record),
                    corrects=original,
                )
        except (SerializationError, SchemaRegistryError, KafkaException, PublishFailed) as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the correction could not be published ({exc}); the dispute stays answered: "
                f"POST /v1/disputes/{dispute_id}/correction again",
            ) from exc
    gw.metrics.published.labels(code).inc()
    try:
        _service(gw).corrected(dispute, system=who.system, department=who.department, correction_record_id=record_id)
    except DisputeRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"refused: {exc}") from exc
    except DisputeLogError as exc:
        raise _unavailable(exc) from exc
    return _out(gw, _visible(gw, who, dispute_id))
