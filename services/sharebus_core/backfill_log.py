"""Backfill requests and their outcomes, as events on the backfill topic (keyed by request id).

A request names a consumer system and a data class; the router that serves backfills answers
with an outcome event under the same key once the history has been sent (or refused).
"""

from __future__ import annotations

import datetime as dt
import time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError

from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import produce_confirmed
from sharebus_core.topic_reader import read_topic


class BackfillState(StrEnum):
    REQUESTED = "requested"
    DONE = "done"
    REFUSED = "refused"
    # Stopped part-way because a newer grant of the same consumer and class now governs its delivery: the
    # consumer is still entitled, so it is no refusal; the reason names the new grant, and asking again
    # backfills under it.
    SUPERSEDED = "superseded"
    # The router could not finish it (Kafka or the registry failed); ask again.
    FAILED = "failed"


class BackfillEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    state: BackfillState
    consumer: str
    data_class: str
    requested_by: str
    at: dt.datetime
    records: int | None = None
    reason: str | None = None


def write_event(access: KafkaAccess, topic: str, event: BackfillEvent) -> None:
    produce_confirmed(access, topic, event.request_id.encode(), event.model_dump_json().encode())


def decode_event(value: bytes | None) -> BackfillEvent | None:
    if value is None:
        return None
    try:
        return BackfillEvent.model_validate_json(value)
    except ValidationError:
        return None


def latest_events(access: KafkaAccess, topic: str) -> dict[str, BackfillEvent]:
    """Each request's latest event."""
    latest: dict[str, BackfillEvent] = {}
    for msg in read_topic(access, topic):
        event = decode_event(msg.value())
        if event is not None:
            latest[event.request_id] = event
    return latest


def wait_outcome(access: KafkaAccess, topic: str, request_id: str, timeout_s: float) -> BackfillEvent | None:
    """The request's outcome once the router has written it, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        event = latest_events(access, topic).get(request_id)
        if event is not None and event.state is not BackfillState.REQUESTED:
            return event
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
