"""What a dead letter carries: the original bytes and headers, plus where it came from and why."""

from __future__ import annotations

from enum import StrEnum

from sharebus_core.errors import SharebusError
from sharebus_core.headers import HeaderList

DLQ_REASON = "sharebus-dlq-reason"
DLQ_DETAIL = "sharebus-dlq-detail"
DLQ_SOURCE_TOPIC = "sharebus-dlq-topic"
DLQ_SOURCE_PARTITION = "sharebus-dlq-partition"
DLQ_SOURCE_OFFSET = "sharebus-dlq-offset"
DLQ_DATA_CLASS = "sharebus-dlq-class"


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


class BadRecord(SharebusError):
    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")


def dead_letter_headers(
    original: HeaderList,
    reason: DeadLetterReason,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    data_class: str,
) -> HeaderList:
    return [
        *original,
        (DLQ_REASON, reason.value.encode()),
        (DLQ_DETAIL, detail[:1000].encode()),
        (DLQ_SOURCE_TOPIC, topic.encode()),
        (DLQ_SOURCE_PARTITION, str(partition).encode()),
        (DLQ_SOURCE_OFFSET, str(offset).encode()),
        (DLQ_DATA_CLASS, data_class.encode()),
    ]
