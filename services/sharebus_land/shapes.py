"""A class's table as data: which columns, of which kind, from the delivered Avro schema. No database here.

A column kind is a small closed set ("text", "bigint", ...) rather than a SQLAlchemy type, so that two
shapes can be compared without reflecting the database (every dialect reflects types differently)
and so that the kinds landed so far can be kept in the database itself (``sharebus_columns``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sharebus_land.errors import IncompatibleSchema

# Columns every landed row carries besides the granted fields.
RECORD_ID, PROVIDER, GRANT_ID, LANDED_AT = "_record_id", "_provider", "_grant_id", "_landed_at"
# The end of the periodic window a row was landed from (NULL for a real-time record): an older window's
# batch, completing after a newer one's, must not overwrite the newer value (LandStore._apply_rows).
PERIOD_END = "_period_end"
META_COLUMNS = (RECORD_ID, PROVIDER, GRANT_ID, LANDED_AT, PERIOD_END)

_PRIMITIVES = {
    "string": "text",
    "int": "bigint",  # Avro promotes int to long: one kind, so the promotion is no change
    "long": "bigint",
    "float": "double",
    "double": "double",
    "boolean": "bool",
    "bytes": "bytes",
    "enum": "text",
}
_LOGICAL = {"decimal": "numeric", "date": "date", "timestamp-millis": "timestamp", "timestamp-micros": "timestamp"}


def column_kind(avro_type: Any) -> str:
    """The kind of column that holds values of an Avro type (nullable unions unwrapped)."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return column_kind(branches[0]) if len(branches) == 1 else "json"
    if isinstance(avro_type, Mapping):
        logical = avro_type.get("logicalType")
        if isinstance(logical, str) and logical in _LOGICAL:
            return _LOGICAL[logical]
        inner = avro_type.get("type")
        if inner in ("record", "array", "map"):
            return "json"
        if inner == "fixed":
            return "bytes"
        return column_kind(inner)
    if isinstance(avro_type, str):
        return _PRIMITIVES.get(avro_type, "json")
    return "json"


@dataclass(frozen=True, slots=True)
class ClassShape:
    """What one delivered schema of a class asks of its table: the key and the granted fields, in order."""

    data_class: str
    key_field: str
    key_kind: str
    fields: tuple[tuple[str, str], ...]  # (field name, column kind), key excluded

    @classmethod
    def from_schema(cls, data_class: str, key_field: str, schema: Mapping[str, Any]) -> ClassShape:
        kinds = {f["name"]: column_kind(f["type"]) for f in schema.get("fields", [])}
        # A grant without the key field still lands: the key is the message key, as published (text).
        key_kind = kinds.pop(key_field, "text")
        return cls(data_class, key_field, key_kind, tuple(kinds.items()))


def evolve(landed: Mapping[str, str], wanted: Sequence[tuple[str, str]], what: str) -> list[tuple[str, str]]:
    """The columns to add so that a table with ``landed`` columns holds ``wanted`` ones.

    A new field is a new (nullable) column; a field that the new schema drops keeps its column
    (rows from now on hold NULL there). A changed kind cannot be followed (int and long are one kind):
    ``IncompatibleSchema`` names the column and both kinds.
    """
    added: list[tuple[str, str]] = []
    for name, kind in wanted:
        before = landed.get(name)
        if before is None:
            added.append((name, kind))
        elif before != kind:
            raise IncompatibleSchema(
                f"{what}: column {name!r} holds {before} values and the delivered schema now sends {kind}; "
                "migrate the table by hand, then restart the sink"
            )
    return added
