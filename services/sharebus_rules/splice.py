"""Projection and masking by splicing the published Avro bytes, instead of encoding the projection again.

Avro's binary encoding of a record is its fields' encodings one after the other, with no field names,
tags or lengths around them. So the encoding of a projection (the granted fields, in the grant's
order, masked ones as ``["null", "string"]``; ``sharebus_rules.projection.derive_schema``) is:

- for a field passed unmasked, the very bytes it has in the published record;
- for a masked field, ``0x00`` for null, or ``0x02`` and the masked text as an Avro string.

A ``Splicer`` finds where each field's bytes start and end by walking the record once (lengths and
varints only, nothing decoded), then joins the slices. It is pure and stateless per record, built
once per (writer schema, grant projection). A caller must have decoded the record in full first (a
record that does not decode is never forwarded), so the walk only ever sees valid bytes, and may only
splice when the writer schema's projected fields have the types the projection's schema gives them.

The router's data path uses it (``sharebus_router.projector``) when a record's writer schema derives
exactly the projection's schema, and encodes with fastavro otherwise.

``tests/unit/test_splice.py`` proves the bytes identical to fastavro's own encoding of
``project(record, fields, masked)`` over random records of every catalogue schema.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sharebus_core.errors import SharebusError
from sharebus_rules.projection import mask_value
from sharebus_rules.walk import read_long

Skip = Callable[[bytes, int], int]


class SpliceUnsupported(SharebusError, ValueError):
    """A schema the splicer cannot walk (the caller encodes the projection instead)."""


def _varint_end(buf: bytes, pos: int) -> int:
    while buf[pos] & 0x80:
        pos += 1
    return pos + 1


def _skip_sized(buf: bytes, pos: int) -> int:
    length, pos = read_long(buf, pos)
    return pos + length


def _fixed(size: int) -> Skip:
    return lambda _buf, pos: pos + size


_PRIMITIVE: dict[str, Skip] = {
    "null": _fixed(0),
    "boolean": _fixed(1),
    "int": _varint_end,
    "long": _varint_end,
    "float": _fixed(4),
    "double": _fixed(8),
    "bytes": _skip_sized,
    "string": _skip_sized,
}


def _blocks(item: Skip, pairs: bool) -> Skip:
    """Arrays and maps: blocks of items, a negative count followed by the block's size in bytes."""

    def skip(buf: bytes, pos: int) -> int:
        while True:
            count, pos = read_long(buf, pos)
            if count == 0:
                return pos
            if count < 0:
                size, pos = read_long(buf, pos)
                pos += size
                continue
            for _ in range(count):
                if pairs:
                    pos = _skip_sized(buf, pos)
                pos = item(buf, pos)

    return skip


def _union(branches: Sequence[Skip]) -> Skip:
    def skip(buf: bytes, pos: int) -> int:
        index, pos = read_long(buf, pos)
        if not 0 <= index < len(branches):
            raise SpliceUnsupported(f"union branch {index} out of range")
        return branches[index](buf, pos)

    return skip


def _record(fields: Sequence[Skip]) -> Skip:
    def skip(buf: bytes, pos: int) -> int:
        for field in fields:
            pos = field(buf, pos)
        return pos

    return skip


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def skipper(schema: Any, named: dict[str, Skip] | None = None, namespace: str | None = None) -> Skip:
    """The function that steps over one value of ``schema`` (logical types step as their base type).

    Named types are known by their full names, as Avro resolves them: a name without a dot takes the
    enclosing namespace, so two types sharing a short name in different namespaces stay apart.
    """
    named = {} if named is None else named
    if isinstance(schema, list):
        return _union([skipper(branch, named, namespace) for branch in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVE:
            return _PRIMITIVE[schema]
        for candidate in (_fullname(schema, namespace), schema):
            if candidate in named:
                return named[candidate]
        raise SpliceUnsupported(f"unknown or recursive type {schema!r}")
    if not isinstance(schema, Mapping):
        raise SpliceUnsupported(f"not a schema: {schema!r}")
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        name = str(schema["name"])
        own = schema.get("namespace", namespace if "." not in name else name.rsplit(".", 1)[0])
        fullname = _fullname(name, own)
        if fullname in named:
            raise SpliceUnsupported(f"type {fullname!r} is defined twice")
        if kind == "record":
            found = _record([skipper(f["type"], named, own or None) for f in schema["fields"]])
        elif kind == "enum":
            found = _varint_end
        else:
            found = _fixed(int(schema["size"]))
        named[fullname] = found
        return found
    if kind == "array":
        return _blocks(skipper(schema["items"], named, namespace), pairs=False)
    if kind == "map":
        return _blocks(skipper(schema["values"], named, namespace), pairs=True)
    return skipper(kind, named, namespace)


def _avro_long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag & ~0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def masked_bytes(field: str, value: Any) -> bytes:
    """A masked field as its derived schema (``["null", "string"]``) encodes it."""
    text = mask_value(field, value)
    if text is None:
        return b"\x00"
    encoded = text.encode()
    return b"\x02" + _avro_long(len(encoded)) + encoded


class Splicer:
    """Builds the projection's bytes from the published record's bytes (no wire header) and its decoded
    value (needed only for masked fields, whose masked text comes from the value)."""

    def __init__(self, writer_schema: Mapping[str, Any], fields: Sequence[str], masked: Collection[str]) -> None:
        if writer_schema.get("type") != "record":
            raise SpliceUnsupported("only records are projected")
        # A record that holds itself is refused (its name is not known while its fields are built).
        named: dict[str, Skip] = {}
        top = str(writer_schema.get("name", ""))
        namespace = writer_schema.get("namespace", top.rsplit(".", 1)[0] if "." in top else None)
        names = [str(f["name"]) for f in writer_schema["fields"]]
        self._skips = [skipper(f["type"], named, namespace) for f in writer_schema["fields"]]
        position = {name: i for i, name in enumerate(names)}
        missing = [f for f in fields if f not in position]
        if missing:
            raise SpliceUnsupported(f"fields {missing} are not in the writer's schema")
        last = len(names)
        # A slice ends at the next field's start; the last field's ends where the record does (None).
        self._plan = [(position[f], _end(position[f], last), f, f in masked) for f in fields]
        # Whether ``project`` reads the record's value: a masked field's text comes from it.
        self.masks = any(f in masked for f in fields)
        runs = _runs([position[f] for f in fields if f not in masked]) if not masked else None
        self._runs = [(start, _end(end - 1, last)) for start, end in runs] if runs is not None else None
        # Only as far into the record as the last bound a slice needs: not past the start of a last
        # field that is copied, whose end is the record's.
        walk = max(
            (end if end is not None else i for i, end, _name, is_masked in self._plan if not is_masked), default=0
        )
        # The common field types are stepped over inline (no call per field): most records are flat.
        steps = [_step(f["type"], skip) for f, skip in zip(writer_schema["fields"], self._skips, strict=True)]
        self._steps = steps[:walk]

    def project(self, payload: bytes, record: Mapping[str, Any] | None, bounds: Sequence[int] | None = None) -> bytes:
        """``payload``: exactly one record's bytes, as the caller's full check found them (nothing after).

        ``record``: its value, needed only when ``masks``. ``bounds``: where each of the writer's fields
        starts, then the record's end, when the caller's check found them (``sharebus_rules.walk``).
        """
        if bounds is None:
            bounds = self._bounds(payload)
        if self._runs is not None:
            # Kept fields in the writer's order, none masked: a few slices of runs of adjacent fields.
            return b"".join(
                [payload[bounds[start] : None if end is None else bounds[end]] for start, end in self._runs]
            )
        if record is None:
            raise ValueError("a projection with masked fields needs the record's value")
        return b"".join(
            masked_bytes(name, record.get(name))
            if masked
            else payload[bounds[i] : None if end is None else bounds[end]]
            for i, end, name, masked in self._plan
        )

    def _bounds(self, payload: bytes) -> list[int]:
        """Where each field starts, as far into the record as the projection needs."""
        bounds = [0]
        pos = 0
        for kind, skip in self._steps:
            if kind == _SIZED:
                length = payload[pos]
                if length < 0x80:
                    pos += 1 + ((length >> 1) ^ -(length & 1))
                else:
                    pos = _skip_sized(payload, pos)
            elif kind == _VARINT:
                while payload[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind > 0:
                pos += kind
            else:
                pos = skip(payload, pos)
            bounds.append(pos)
        return bounds


# Step kinds: a positive kind is a fixed width in bytes.
_SIZED = -1
_VARINT = -2
_CALL = 0
_WIDTHS = {"boolean": 1, "float": 4, "double": 8}


def _step(schema: Any, skip: Skip) -> tuple[int, Skip]:
    """How ``Splicer.project`` steps over a field of ``schema``: inline for primitives, else ``skip``."""
    base = schema.get("type") if isinstance(schema, Mapping) and "logicalType" in schema else schema
    if base in ("string", "bytes"):
        return _SIZED, skip
    if base in ("int", "long"):
        return _VARINT, skip
    if isinstance(base, str) and base in _WIDTHS:
        return _WIDTHS[base], skip
    return _CALL, skip


def _end(index: int, fields: int) -> int | None:
    """The bound where field ``index``'s bytes end: the next field's start, or None for the record's end."""
    return index + 1 if index + 1 < fields else None


def _runs(indexes: Sequence[int]) -> list[tuple[int, int]] | None:
    """``[start, end)`` runs of adjacent field indexes, or None when the fields are not in the writer's order."""
    if any(b <= a for a, b in itertools.pairwise(indexes)):
        return None
    runs: list[tuple[int, int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs
