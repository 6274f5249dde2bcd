"""Field minimisation: keep only the granted fields, mask the ones the grant says, and the schema for that."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

_MASK = "*"


def mask_resident_id(value: str) -> str:
    """Keeps the first 6 (area code) and last 4 characters: 110105********002X."""
    if len(value) <= 10:
        return _MASK * len(value)
    return value[:6] + _MASK * (len(value) - 10) + value[-4:]


def mask_name(value: str) -> str:
    """Keeps the first character (the family name): 张**."""
    return value[:1] + _MASK * (len(value) - 1)


def mask_other(value: str) -> str:
    """Keeps the last 4 characters of longer values, nothing of short ones."""
    if len(value) <= 4:
        return _MASK * len(value)
    return _MASK * (len(value) - 4) + value[-4:]


def mask_value(field: str, value: Any) -> str | None:
    """The masking rule is chosen by the field's name; masked values are always strings (or null)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "id_number" in field or field.endswith("_id_no"):
        return mask_resident_id(text)
    if field == "name" or field.endswith("_name"):
        return mask_name(text)
    return mask_other(text)


def project(record: Mapping[str, Any], fields: Sequence[str], masked: Collection[str]) -> dict[str, Any]:
    """The record as the consumer may see it: granted fields only, masked where granted masked."""
    return {f: mask_value(f, record.get(f)) if f in masked else record.get(f) for f in fields}


def derive_schema(schema: Mapping[str, Any], fields: Sequence[str], masked: Collection[str]) -> dict[str, Any]:
    """The Avro schema of a projection: the granted fields in the given order, masked ones as optional
    strings. Names and docs are kept, so a subscriber sees the provider's documentation."""
    by_name = {f["name"]: f for f in schema["fields"]}
    derived_fields = []
    for name in fields:
        field = copy.deepcopy(by_name[name])
        if name in masked:
            field["type"] = ["null", "string"]
            field["default"] = None
            field["doc"] = f"{field.get('doc', '')} (masked)".strip()
        derived_fields.append(field)
    derived = {k: copy.deepcopy(v) for k, v in schema.items() if k != "fields"}
    derived["fields"] = derived_fields
    return derived
