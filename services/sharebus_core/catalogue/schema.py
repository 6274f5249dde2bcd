"""A data class's Avro schema, parsed once at load time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import avro.errors
import avro.schema
import fastavro
from fastavro.validation import validate as fastavro_validate

from sharebus_core.errors import SharebusError
from sharebus_core.records import RecordInvalid, find_invalid_field


class SchemaParseError(SharebusError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AvroSchema:
    """The schema text as registered, and the parsed form fastavro encodes and decodes with."""

    text: str
    parsed: Any = field(repr=False, compare=False)
    field_defs: list[dict[str, Any]] = field(repr=False, compare=False)
    field_types: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> AvroSchema:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaParseError(f"not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("type") != "record":
            raise SchemaParseError("a data class schema must be an Avro record")
        try:
            # The registry checks compatibility with the Apache Avro package, so the schema must parse
            # there as well as in fastavro, which encodes and decodes on the hot path.
            avro.schema.parse(text)
            parsed = fastavro.parse_schema(document)
        except (
            avro.errors.AvroException,
            fastavro.schema.SchemaParseException,
            ValueError,
            TypeError,
        ) as exc:
            raise SchemaParseError(str(exc)) from exc
        compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        fields = document["fields"]
        return cls(compact, parsed, fields, {f["name"]: f["type"] for f in fields})

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self.field_types)

    def validate(self, record: object) -> None:
        """Raises RecordInvalid naming the first offending field."""
        if not isinstance(record, dict):
            raise RecordInvalid(None, f"a record must be a mapping of field names, not {type(record).__name__}")
        unknown = sorted(set(record) - set(self.field_types))
        if unknown:
            raise RecordInvalid(unknown[0], f"field {unknown[0]!r} is not in the schema")
        try:
            fastavro_validate(record, self.parsed, raise_errors=True)
        except (fastavro.validation.ValidationError, ValueError, TypeError, AttributeError) as exc:
            raise find_invalid_field(record, self.field_defs) from exc
