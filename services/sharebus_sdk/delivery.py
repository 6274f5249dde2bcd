"""What a Subscriber hands out: a decoded record with its metadata, or an undecodable one to ``on_error``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sharebus_sdk.batches import BatchInfo
from sharebus_sdk.errors import DeliveryDecodeError


@dataclass(frozen=True, slots=True)
class Delivery:
    data_class: str
    provider: str
    consumer: str
    trace_id: str | None
    record_id: str | None
    mode: str | None
    published_ns: int | None
    key: str | None
    value: dict[str, Any]
    topic: str
    partition: int
    offset: int
    # Set on records of a periodic batch (the Subscriber hands those out inside a Batch).
    batch: BatchInfo | None = None
    # Set on records replayed from history for this subscriber: the backfill request's id.
    backfill: str | None = None
    # Set on a correction: the record id of the record it corrects (a dispute's answer).
    corrects: str | None = None
    # The quality rules (``field:kind``) the record failed, when its class flags failures (docs/quality.md).
    quality: tuple[str, ...] = ()
    # Set when the key is withheld: the key field this system's grant does not show (docs/reference.md, "The record
    # key").
    key_withheld: str | None = None


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record the Subscriber could not decode, as handed to ``on_error``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    error: DeliveryDecodeError


ErrorCallback = Callable[[Undecodable], None]

__all__ = ["Delivery", "ErrorCallback", "Undecodable"]
