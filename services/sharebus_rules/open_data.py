"""What the public may see of a class: open classes freely, conditionally open ones with a key, never a
sensitive field, whatever a grant says (a grant is between departments; the public holds none)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from sharebus_core.catalogue import Catalogue, DataClass, OpenType, ShareType
from sharebus_core.errors import SharebusError


class PublicAccess(StrEnum):
    ANYONE = "anyone"
    OPEN_DATA_KEY = "open_data_key"


class NotOpen(SharebusError, LookupError):
    """The class is not open to the public; the open path answers it as if it did not exist."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"data class {code!r} is not open data")


def is_open(entry: DataClass) -> bool:
    """Whether the public may see the class at all: the one test every open-data path uses.

    A class that is not shared between departments is not opened to the public either, whatever its
    open type says: the stricter of the two rules wins.
    """
    return entry.open_type is not OpenType.NOT_OPEN and entry.share_type is not ShareType.NONE


def public_access(entry: DataClass) -> PublicAccess:
    """Who may read the class on the open path; NotOpen for a class that is not open."""
    if not is_open(entry):
        raise NotOpen(entry.code)
    if entry.open_type is OpenType.OPEN:
        return PublicAccess.ANYONE
    if entry.open_type is OpenType.CONDITIONAL_OPEN:
        return PublicAccess.OPEN_DATA_KEY
    raise NotOpen(entry.code)


def open_fields(entry: DataClass, schema_fields: Sequence[str]) -> tuple[str, ...]:
    """The fields served to the public, in schema order: every field but the sensitive ones."""
    public_access(entry)
    sensitive = set(entry.sensitive_fields)
    return tuple(f for f in schema_fields if f not in sensitive)


def key_is_open(entry: DataClass, fields: Sequence[str]) -> bool:
    """Whether the record key (the value of ``key_field``) may be served: only when that field is open."""
    return entry.key_field in fields


def open_record(record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A record as the public sees it: only ``fields`` (from open_fields), nothing else it may carry."""
    return {f: record.get(f) for f in fields}


def open_schema(schema: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The Avro schema restricted to the open fields, names and docs kept."""
    keep = set(fields)
    return {
        **{k: v for k, v in schema.items() if k != "fields"},
        "fields": [f for f in schema["fields"] if f["name"] in keep],
    }


def open_catalogue(catalogue: Catalogue) -> Catalogue:
    """The catalogue as the public sees it: only the open and conditionally open classes, no subscriptions."""
    kept = {code: entry for code, entry in catalogue.data_classes.items() if is_open(entry)}
    return dataclasses.replace(
        catalogue,
        data_classes=kept,
        schemas={code: catalogue.schemas[code] for code in kept},
        subscriptions=(),
        _subscribers={},
    )
