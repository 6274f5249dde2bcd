"""Parsing, validating and canonicalising submitted Avro schemas (Apache Avro's own parser)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import avro.errors
import avro.schema

from sharebus_registry.errors import InvalidSchema

AVRO = "AVRO"
SUPPORTED_TYPES = (AVRO,)

_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    text: str
    """What is stored and served: the submitted JSON with insignificant whitespace removed."""
    canonical: str
    """The identity of the schema: two submissions with the same canonical form get the same id."""
    avro: Any


def parse_submitted(text: object, schema_type: object = AVRO, references: object = None) -> ParsedSchema:
    """Validates a schema as it arrives in a request body; raises ``InvalidSchema`` with the reason."""
    if schema_type is None:
        schema_type = AVRO
    if not isinstance(schema_type, str) or schema_type.upper() not in SUPPORTED_TYPES:
        raise InvalidSchema(
            f"Unsupported schemaType {schema_type!r}: this registry only supports {', '.join(SUPPORTED_TYPES)}"
        )
    if references:
        raise InvalidSchema("Schema references are not supported by this registry; inline the named types")
    if not isinstance(text, str) or not text.strip():
        raise InvalidSchema("Empty schema: the request body needs a non-empty string field 'schema'")
    return parse(text)


def parse(text: str) -> ParsedSchema:
    try:
        return _parse(text)
    except RecursionError as exc:
        # A document nested deeper than the parsers (or the walks below) go: from a request or from a
        # record on the log, it is a schema like any other invalid one, not a crash.
        raise InvalidSchema("Invalid schema: nested too deeply") from exc


def _parse(text: str) -> ParsedSchema:
    try:
        document = json.loads(text)
    except ValueError as exc:  # not JSON, or a number too long to convert
        raise InvalidSchema(f"Invalid schema: not JSON ({exc})") from exc
    try:
        parsed = avro.schema.parse(text)
    except (avro.errors.AvroException, ValueError, TypeError, KeyError, AttributeError) as exc:
        # The Avro parser signals some malformed documents with plain Python errors, not AvroException.
        raise InvalidSchema(f"Invalid schema: {exc}") from exc
    problems = list(_default_problems(parsed))
    if problems:
        raise InvalidSchema("Invalid schema: " + "; ".join(problems))
    return ParsedSchema(
        text=json.dumps(document, separators=(",", ":"), ensure_ascii=False),
        canonical=canonical_form(parsed),
        avro=parsed,
    )


def canonical_form(parsed: Any) -> str:
    """Avro's own JSON rendering with sorted keys: ignores formatting and attribute order only.

    Not the Parsing Canonical Form, which drops defaults, docs and aliases: two schemas differing in
    a default must stay two schemas.
    """
    return json.dumps(parsed.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _default_problems(root: Any) -> Sequence[str]:
    # The Python parser accepts any default; Java's (and so Confluent's) rejects a default that does
    # not match its field's type, and a reader would only fail later, at decode time.
    problems: list[str] = []
    seen: set[str] = set()

    def walk(schema: Any) -> None:
        kind = schema.type
        if kind in ("record", "error"):
            if schema.fullname in seen:
                return
            seen.add(schema.fullname)
            for field in schema.fields:
                if field.has_default and not default_matches(field.type, field.default):
                    problems.append(
                        f"default {json.dumps(field.default)} of field '{schema.fullname}.{field.name}' "
                        f"does not match its type {json.dumps(field.type.to_json())}"
                    )
                walk(field.type)
        elif kind == "array":
            walk(schema.items)
        elif kind == "map":
            walk(schema.values)
        elif kind in ("union", "error_union"):
            for branch in schema.schemas:
                walk(branch)

    walk(root)
    return problems


def default_matches(schema: Any, value: object) -> bool:
    """Whether a JSON default value fits an Avro type, with Avro's JSON encoding of defaults."""
    kind = schema.type
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind in ("float", "double"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("string", "bytes", "fixed"):
        # bytes and fixed defaults are JSON strings whose code points are the byte values.
        return isinstance(value, str)
    if kind == "enum":
        return isinstance(value, str) and value in schema.symbols
    if kind == "array":
        return isinstance(value, list) and all(default_matches(schema.items, item) for item in value)
    if kind == "map":
        return isinstance(value, dict) and all(default_matches(schema.values, item) for item in value.values())
    if kind in ("union", "error_union"):
        # Avro 1.12: the default may match any branch of the union, not only the first.
        return any(default_matches(branch, value) for branch in schema.schemas)
    if kind in ("record", "error"):
        if not isinstance(value, dict):
            return False
        return all(
            default_matches(field.type, value[field.name]) if field.name in value else field.has_default
            for field in schema.fields
        )
    return False
