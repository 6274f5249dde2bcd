"""JSON <-> Avro values for the gateway, and batch validation errors that name the record and the field.

JSON has no dates or timestamps: clients send ISO 8601 strings for Avro ``date`` and
``timestamp-millis`` fields, and receive them back the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sharebus_core.catalogue import AvroSchema
from sharebus_core.records import RecordInvalid


def _logical(avro_type: Any) -> str | None:
    """The logical type of a field's type, looking through a nullable union."""
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        return logical if isinstance(logical, str) else None
    if isinstance(avro_type, list):
        for member in avro_type:
            found = _logical(member)
            if found is not None:
                return found
    return None


def _from_json(value: Any, logical: str | None) -> Any:
    if not isinstance(value, str) or logical is None:
        return value
    try:
        if logical == "date":
            return dt.date.fromisoformat(value)
        if logical in ("timestamp-millis", "timestamp-micros"):
            parsed = dt.datetime.fromisoformat(value)
            # A timestamp without an offset is taken as UTC rather than the gateway's local time.
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    except ValueError:
        # Left as the string: validation then names the field and the type it should have.
        return value
    return value


def record_from_json(record: Mapping[str, Any], schema: AvroSchema) -> dict[str, Any]:
    """A JSON object as the Avro record the serializer expects (ISO strings to dates and times)."""
    return {name: _from_json(value, _logical(schema.field_types.get(name))) for name, value in record.items()}


def to_json(value: Any) -> Any:
    """A decoded Avro value as JSON-compatible data."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


@dataclass(frozen=True, slots=True)
class RecordProblem:
    index: int
    field: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


def validate_batch(records: Sequence[Any], schema: AvroSchema) -> tuple[list[dict[str, Any]], list[RecordProblem]]:
    """Converts and validates every record; returns the Avro records, or every problem found.

    All records are checked, not only up to the first bad one, so a client can fix a batch in one go.
    """
    converted: list[dict[str, Any]] = []
    problems: list[RecordProblem] = []
    for index, raw in enumerate(records):
        if not isinstance(raw, Mapping):
            problems.append(RecordProblem(index, None, f"a record must be a JSON object, not {type(raw).__name__}"))
            continue
        record = record_from_json(raw, schema)
        try:
            schema.validate(record)
        except RecordInvalid as exc:
            problems.append(RecordProblem(index, exc.field, exc.reason))
            continue
        converted.append(record)
    return converted, problems
