"""The header values a publisher chooses (record id, trace id, the id a correction corrects), checked as the
router checks them (sharebus_router.bus_headers; the bound is sharebus_core.headers'): a value it refuses would
make the record a ``bad_header`` dead letter after ``publish`` had returned, so the Publisher refuses it before
anything is sent."""

from __future__ import annotations

from sharebus_core.headers import MAX_ID_BYTES
from sharebus_core.records import RecordInvalid

__all__ = ["MAX_ID_BYTES", "chosen_headers", "header_value"]


def header_value(parameter: str, value: str) -> bytes:
    """``value`` as the header's bytes; ``RecordInvalid`` naming ``parameter`` when the router would refuse it."""
    if not value.isascii() or not value.strip() or not value.isprintable():
        raise RecordInvalid(None, f"{parameter} {value[:40]!r} is not printable ASCII text; nothing was sent")
    raw = value.encode("ascii")
    if len(raw) > MAX_ID_BYTES:
        raise RecordInvalid(None, f"{parameter} is {len(raw)} bytes, more than {MAX_ID_BYTES}; nothing was sent")
    return raw


def chosen_headers(trace_id: str | None, record_id: str | None, corrects: str | None) -> dict[str, bytes]:
    """The values given, checked, by parameter name. An empty trace or record id is none (the Publisher makes
    a new one); ``corrects``, when given, is sent as it is, so an empty one is refused too."""
    given = {"trace_id": trace_id or None, "record_id": record_id or None, "corrects": corrects}
    return {name: header_value(name, value) for name, value in given.items() if value is not None}
