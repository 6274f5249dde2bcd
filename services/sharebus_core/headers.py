"""Kafka header names carried by every record on the bus, and helpers to read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

DATA_CLASS = "sharebus-class"
PROVIDER = "sharebus-provider"
TRACE_ID = "sharebus-trace-id"
# Stable per published record: a subscriber that sees the same id twice (after a router restart
# under at-least-once delivery) has seen the same record twice.
RECORD_ID = "sharebus-record-id"
PUBLISHED_NS = "sharebus-published-ns"
CONSUMER = "sharebus-consumer"
MODE = "sharebus-mode"
GRANT_ID = "sharebus-grant-id"

HeaderList = list[tuple[str, bytes]]


RawHeaders = Iterable[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None


def header_map(headers: RawHeaders) -> dict[str, bytes]:
    """Normalises the header shapes of confluent-kafka (list of tuples) and faust (mapping)."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {key: value.encode() if isinstance(value, str) else value for key, value in items if value is not None}


def text(headers: Mapping[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value.decode("utf-8", "replace") if value is not None else None
