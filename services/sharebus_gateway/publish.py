"""``POST /v1/classes/{class}/records``: one record or a batch, validated whole, then published with the SDK.

The SDK ``Publisher`` does the producing, so records sent over HTTP carry the same headers, record ids
and registry schema lookups as records published from Python. With an ``Idempotency-Key`` a retry
publishes nothing new (``sharebus_gateway.idempotency``).
"""

from __future__ import annotations

from typing import Annotated, Any

from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, status
from pydantic import BaseModel

from sharebus_core.catalogue import DataClass
from sharebus_gateway.auth import Caller, CallerDep, forbid
from sharebus_gateway.idempotency import KeyReused, body_digest, record_ids
from sharebus_gateway.json_avro import validate_batch
from sharebus_gateway.state import Gateway, gateway
from sharebus_gateway.strict_json import StrictJsonRoute
from sharebus_sdk import PublishFailed

router = APIRouter(tags=["publish"], route_class=StrictJsonRoute)


class Published(BaseModel):
    data_class: str
    accepted: int
    record_ids: list[str]


def normalise_class_code(code: str) -> str:
    """Accepts ``301001001/000001`` and the topic-safe ``301001001.000001``."""
    head, dot, tail = code.partition(".")
    return f"{head}/{tail}" if dot and "/" not in code else code


def known_class(gw: Gateway, code: str) -> DataClass:
    entry = gw.catalogue.data_classes.get(normalise_class_code(code))
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such data class in the catalogue")
    return entry


def require_owning_system(gw: Gateway, who: Caller, request: Request, entry: DataClass, action: str) -> None:
    """403 (audited) unless the caller is the system that owns the class.

    Kafka's ACLs let only the owning system write a class's source topic (``sharebus_access.acls``), and
    the SDK refuses the same; the gateway publishes with its department's credential, so it must hold
    HTTP callers to the same rule, or one system could publish another system's class of its department.
    """
    if entry.system == who.system:
        return
    raise forbid(
        gw,
        who,
        request,
        action=action,
        reason="not_owning_system",
        detail=f"system {who.system} may not publish data class {entry.code}: it belongs to system "
        f"{entry.system}, and only a key of {entry.system} may publish it",
        data_class=entry.code,
        provider=entry.provider,
    )


RecordsBody = Annotated[
    list[dict[str, Any]] | dict[str, Any],
    Body(description="one record (a JSON object), or a batch (an array of objects); dates as ISO 8601 strings"),
]


@router.post(
    "/v1/classes/{class_code:path}/records",
    response_model=Published,
    summary="Publish records of a data class your system provides",
    responses={
        403: {"description": "your department does not provide this class, or another of its systems does"},
        404: {"description": "no such class"},
        413: {"description": "too many records in one request"},
        422: {
            "description": "invalid records (each problem names the record index and the field), "
            "or an Idempotency-Key used before with another body"
        },
        503: {"description": "Kafka did not acknowledge the records"},
    },
)
def publish(
    class_code: str,
    body: RecordsBody,
    who: CallerDep,
    request: Request,
    gw: Annotated[Gateway, Depends(gateway)],
    x_trace_id: Annotated[str | None, Header(max_length=128)] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)] = None,
) -> Published:
    entry = known_class(gw, class_code)
    if entry.provider != who.department:
        raise forbid(
            gw,
            who,
            request,
            action="publish",
            reason="not_provider",
            detail=f"{who.department} does not provide data class {entry.code}",
            data_class=entry.code,
            provider=entry.provider,
        )
    require_owning_system(gw, who, request, entry, "publish")
    records: list[Any] = body if isinstance(body, list) else [body]
    if not records:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the batch has no records")
    if len(records) > gw.settings.max_batch_records:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {gw.settings.max_batch_records} records per request"
        )
    converted, problems = validate_batch(records, gw.catalogue.schema(entry.code))
    if problems:
        gw.metrics.rejected.labels(entry.code).inc(len(records))
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {
                "message": f"{len(problems)} of {len(records)} record(s) are invalid; none was published",
                "errors": [p.as_json() for p in problems],
            },
        )
    if idempotency_key is None:
        return _publish(gw, who, entry, converted, x_trace_id, None)
    return _publish_once(gw, who, entry, records, converted, x_trace_id, idempotency_key)


def _publish_once(
    gw: Gateway,
    who: Caller,
    entry: DataClass,
    records: list[Any],
    converted: list[Any],
    trace_id: str | None,
    key: str,
) -> Published:
    """Publishes under an idempotency key: an answered key publishes nothing; ids come from the key.
    Two concurrent first tries may both publish: with the same ids, so subscribers drop the repeat."""
    digest = body_digest(records)
    try:
        done = gw.answered.answered(who.department, entry.code, key, digest)
    except KeyReused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if done is not None:
        return Published(data_class=entry.code, accepted=len(done), record_ids=done)
    ids = record_ids(who.department, entry.code, key, len(converted))
    published = _publish(gw, who, entry, converted, trace_id, ids)
    # Remembered only once Kafka acknowledged every record (a 503 raised in _publish is not remembered).
    gw.answered.remember(who.department, entry.code, key, digest, published.record_ids)
    return published


def _publish(
    gw: Gateway, who: Caller, entry: DataClass, converted: list[Any], trace_id: str | None, ids: list[str] | None
) -> Published:
    """Produces the validated records, then flushes: returns once Kafka acknowledged every one."""
    publisher, lock = gw.publishers.get(who.department)
    # One transaction per request: produce every record, then commit (which waits for every
    # acknowledgement). A failure anywhere aborts it, so none of the batch is committed.
    with lock:
        try:
            with publisher.transaction(gw.settings.publish_timeout_s):
                published_ids = [
                    publisher.publish(entry.code, record, trace_id=trace_id, record_id=ids[i] if ids else None)
                    for i, record in enumerate(converted)
                ]
        except (SerializationError, SchemaRegistryError, KafkaException) as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"cannot publish now: {exc}; nothing was published"
            ) from exc
        except PublishFailed as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"Kafka did not take the batch ({exc.failures[:3]}); nothing was published, publish it again",
            ) from exc
    gw.metrics.published.labels(entry.code).inc(len(published_ids))
    return Published(data_class=entry.code, accepted=len(published_ids), record_ids=published_ids)
