"""Record validation errors that name the field, translated from fastavro's uneven exceptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.validation import validate as fastavro_validate

from sharebus_core.errors import SharebusError


class RecordInvalid(SharebusError, ValueError):
    """A record does not fit its data class's schema. ``field`` names the first offending field."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"field {field!r}: {message}" if field else message)


def _has_default(field_def: Mapping[str, Any]) -> bool:
    return "default" in field_def


def find_invalid_field(record: Mapping[str, Any], field_defs: list[dict[str, Any]]) -> RecordInvalid:
    """Finds the first field that makes the record invalid. Only called on the error path.

    fastavro reports missing fields without a name and logical-type failures as bare ValueErrors,
    so each field is checked on its own against a one-field schema to name the culprit.
    """
    for field_def in field_defs:
        name = field_def["name"]
        if name not in record:
            if _has_default(field_def):
                continue
            return RecordInvalid(name, "is required and missing")
        single = {"type": "record", "name": "FieldCheck", "fields": [field_def]}
        try:
            fastavro_validate({name: record[name]}, fastavro.parse_schema(single), raise_errors=True)
        except (fastavro.validation.ValidationError, ValueError, TypeError, AttributeError) as exc:
            expected = json_type(field_def["type"])
            return RecordInvalid(name, f"value {record[name]!r} does not fit type {expected} ({_short(exc)})")
    return RecordInvalid(None, "the record does not fit its schema")


def json_type(avro_type: Any) -> str:
    if isinstance(avro_type, list):
        return " | ".join(json_type(t) for t in avro_type)
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        return f"{avro_type.get('type')}/{logical}" if logical else str(avro_type.get("type"))
    return str(avro_type)


def _short(exc: BaseException) -> str:
    if isinstance(exc, fastavro.validation.ValidationError):
        return "wrong type"
    return str(exc).splitlines()[0][:120] or type(exc).__name__
