"""The records of the ``_schemas`` topic, in the key/value format Confluent and Karapace use.

Keys are JSON, and the same logical key must always encode to the same bytes, or compaction would
keep both records: fields are written in a fixed order with no whitespace.

- ``{"keytype":"SCHEMA","subject":s,"version":v,"magic":1}`` -> ``{"subject","version","id","schema","deleted"}``,
  a null value removes the version for good (permanent delete).
- ``{"keytype":"CONFIG","subject":s_or_null,"magic":0}`` -> ``{"compatibilityLevel": ...}``, a null value
  removes the configuration (``subject`` null is the global one).
- ``{"keytype":"DELETE_SUBJECT","subject":s,"magic":0}`` -> ``{"subject","version"}``: Karapace's soft
  delete of every version up to ``version``. Only read, never written.
- ``{"keytype":"SHAREBUS_ID_HIGH_WATER","magic":0}`` -> ``{"id": n}``: this registry's own, the highest
  id it has issued, written with a permanent delete. Compaction removes a permanently deleted version's
  records for good, and with them the only trace of its id; this one key, always holding the largest
  value, survives, so a restart never hands that id out again. A reader that does not know the key
  type skips it, as this one skips NOOP and MODE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sharebus_core.errors import SharebusError
from sharebus_registry.compat import CompatibilityLevel, parse_level
from sharebus_registry.errors import InvalidCompatibilityLevel
from sharebus_registry.schemas import AVRO


class MalformedRecord(SharebusError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SchemaKey:
    subject: str
    version: int


@dataclass(frozen=True, slots=True)
class ConfigKey:
    subject: str | None


@dataclass(frozen=True, slots=True)
class DeleteSubjectKey:
    subject: str


@dataclass(frozen=True, slots=True)
class HighWaterKey:
    """The one key of the highest issued id (module docstring)."""


@dataclass(frozen=True, slots=True)
class HighWaterValue:
    schema_id: int


@dataclass(frozen=True, slots=True)
class SchemaValue:
    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool = False
    schema_type: str = AVRO


@dataclass(frozen=True, slots=True)
class ConfigValue:
    level: CompatibilityLevel


@dataclass(frozen=True, slots=True)
class DeleteSubjectValue:
    subject: str
    version: int


Key = SchemaKey | ConfigKey | DeleteSubjectKey | HighWaterKey
Value = SchemaValue | ConfigValue | DeleteSubjectValue | HighWaterValue


@dataclass(frozen=True, slots=True)
class Record:
    key: Key
    value: Value | None
    """None is a tombstone."""


_HIGH_WATER = "SHAREBUS_ID_HIGH_WATER"


def _dumps(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def encode_key(key: Key) -> bytes:
    if isinstance(key, SchemaKey):
        return _dumps({"keytype": "SCHEMA", "subject": key.subject, "version": key.version, "magic": 1})
    if isinstance(key, ConfigKey):
        return _dumps({"keytype": "CONFIG", "subject": key.subject, "magic": 0})
    if isinstance(key, HighWaterKey):
        return _dumps({"keytype": _HIGH_WATER, "magic": 0})
    return _dumps({"keytype": "DELETE_SUBJECT", "subject": key.subject, "magic": 0})


def encode_value(value: Value | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, SchemaValue):
        document: dict[str, Any] = {
            "subject": value.subject,
            "version": value.version,
            "id": value.schema_id,
            "schema": value.schema,
            "deleted": value.deleted,
        }
        # Confluent writes schemaType only for non-Avro schemas.
        if value.schema_type != AVRO:
            document["schemaType"] = value.schema_type
        return _dumps(document)
    if isinstance(value, ConfigValue):
        return _dumps({"compatibilityLevel": value.level.value})
    if isinstance(value, HighWaterValue):
        return _dumps({"id": value.schema_id})
    return _dumps({"subject": value.subject, "version": value.version})


def encode(record: Record) -> tuple[bytes, bytes | None]:
    return encode_key(record.key), encode_value(record.value)


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and a number too long to convert; RecursionError a
        # document nested deeper than the parser goes: anyone who may write the topic can send either.
        raise MalformedRecord(f"{what} is not JSON this registry reads: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedRecord(f"{what} is not a JSON object: {raw!r}")
    return document


def _str(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise MalformedRecord(f"field {name!r} should be a string in {document}")
    return value


def _int(document: dict[str, Any], name: str) -> int:
    value = document.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedRecord(f"field {name!r} should be an integer in {document}")
    return value


def decode(raw_key: bytes | None, raw_value: bytes | None) -> Record | None:
    """The record, or None for key types this registry does not use (NOOP, MODE...).

    Raises ``MalformedRecord`` for a record of a known type that cannot be understood.
    """
    if raw_key is None:
        raise MalformedRecord("record without a key")
    key_doc = _object(raw_key, "key")
    keytype = key_doc.get("keytype")
    value_doc = None if raw_value is None else _object(raw_value, "value")
    if keytype == "SCHEMA":
        schema_key = SchemaKey(_str(key_doc, "subject"), _int(key_doc, "version"))
        if value_doc is None:
            return Record(schema_key, None)
        deleted = value_doc.get("deleted", False)
        return Record(
            schema_key,
            SchemaValue(
                subject=_str(value_doc, "subject"),
                version=_int(value_doc, "version"),
                schema_id=_int(value_doc, "id"),
                schema=_str(value_doc, "schema"),
                deleted=deleted is True,
                schema_type=str(value_doc.get("schemaType") or AVRO).upper(),
            ),
        )
    if keytype == "CONFIG":
        subject = key_doc.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise MalformedRecord(f"config key subject should be a string or null: {key_doc}")
        if value_doc is None:
            return Record(ConfigKey(subject), None)
        try:
            level = parse_level(value_doc.get("compatibilityLevel"))
        except InvalidCompatibilityLevel as exc:
            raise MalformedRecord(exc.message) from exc
        return Record(ConfigKey(subject), ConfigValue(level))
    if keytype == "DELETE_SUBJECT":
        delete_key = DeleteSubjectKey(_str(key_doc, "subject"))
        if value_doc is None:
            return Record(delete_key, None)
        return Record(delete_key, DeleteSubjectValue(_str(value_doc, "subject"), _int(value_doc, "version")))
    if keytype == _HIGH_WATER:
        return Record(HighWaterKey(), None if value_doc is None else HighWaterValue(_int(value_doc, "id")))
    return None
