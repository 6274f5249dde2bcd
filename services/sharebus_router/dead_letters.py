"""What a dead letter carries: the original bytes and headers, plus where it came from and why."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sharebus_core.errors import SharebusError
from sharebus_core.headers import HeaderList
from sharebus_router.message_size import message_size

DLQ_REASON = "sharebus-dlq-reason"
DLQ_DETAIL = "sharebus-dlq-detail"
DLQ_SOURCE_TOPIC = "sharebus-dlq-topic"
DLQ_SOURCE_PARTITION = "sharebus-dlq-partition"
DLQ_SOURCE_OFFSET = "sharebus-dlq-offset"
DLQ_DATA_CLASS = "sharebus-dlq-class"
# What was left out to keep the dead letter within the message limit ("value", "value,headers", ...);
# the original is still in the source topic at the offset the dead letter names.
DLQ_OMITTED = "sharebus-dlq-omitted"
_DLQ_PREFIX = "sharebus-dlq-"


class DeadLetterReason(StrEnum):
    """A closed set, used as a Prometheus label."""

    NOT_WIRE_FORMAT = "not_wire_format"
    UNKNOWN_SCHEMA_ID = "unknown_schema_id"
    # A schema that exists, but is not one of this data class's registered versions.
    SCHEMA_MISMATCH = "schema_mismatch"
    SCHEMA_INVALID = "schema_invalid"
    UNKNOWN_DATA_CLASS = "unknown_data_class"
    # Labelled (``sharebus-class``) as another catalogue class than the topic it was published to.
    CLASS_MISMATCH = "class_mismatch"
    # A bus header the publisher may set is malformed (no value, repeated, too long, not text, not a number).
    BAD_HEADER = "bad_header"
    # A delivery (or the held copy) of the record would exceed the largest message the router may send.
    TOO_LARGE = "too_large"
    # Anything else about the record that the router could not process; the detail names the error.
    UNPROCESSABLE = "unprocessable"
    # The record failed a quality rule of its class whose failure rejects (``on_failure: reject``). The
    # dead letter's reason header names the rule (``quality:<field>:<kind>``); the metric label does not,
    # so that it stays one closed set.
    QUALITY = "quality"


class BadRecord(SharebusError):
    def __init__(self, reason: DeadLetterReason, detail: str, rule: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.rule = rule
        super().__init__(f"{self.reason_text}: {detail}")

    @property
    def reason_text(self) -> str:
        """What the dead letter's reason header says: the reason, and for a quality rejection its rule."""
        return f"{self.reason.value}:{self.rule}" if self.rule else self.reason.value


def dead_letter_headers(
    original: Iterable[tuple[str, bytes | None]],
    reason: DeadLetterReason | str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    data_class: str,
) -> HeaderList:
    """The record's headers as published (a publisher's ``sharebus-dlq-*`` renamed), then the bus's."""
    kept: HeaderList = [
        ("publisher-" + name if name.startswith(_DLQ_PREFIX) else name, raw)
        for name, raw in original
        if raw is not None
    ]
    return [
        *kept,
        (DLQ_REASON, (reason.value if isinstance(reason, DeadLetterReason) else reason).encode()),
        (DLQ_DETAIL, detail[:1000].encode()),
        (DLQ_SOURCE_TOPIC, topic.encode()),
        (DLQ_SOURCE_PARTITION, str(partition).encode()),
        (DLQ_SOURCE_OFFSET, str(offset).encode()),
        (DLQ_DATA_CLASS, data_class.encode()),
    ]


def bounded(
    key: bytes | None, value: bytes | None, headers: HeaderList, limit: int
) -> tuple[bytes | None, bytes | None, HeaderList]:
    """The dead letter within ``limit`` bytes: the value, then the record's own headers, then the key are
    left out until it fits. The dead-letter headers always stay: they say where the original is."""
    if message_size(key, value, headers) <= limit:
        return key, value, headers
    ours = [(name, raw) for name, raw in headers if name.startswith(_DLQ_PREFIX)]
    options: list[tuple[str, bytes | None, HeaderList]] = [
        ("value", key, headers),
        ("value,headers", key, ours),
        ("value,headers,key", None, ours),
    ]
    for omitted, kept_key, kept in options:
        candidate = [*kept, (DLQ_OMITTED, omitted.encode())]
        if message_size(kept_key, None, candidate) <= limit:
            return kept_key, None, candidate
    return None, None, [*ours, (DLQ_OMITTED, b"value,headers,key")]
