"""Kafka header names carried by every record on the bus, and helpers to read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

DATA_CLASS = "sharebus-class"
PROVIDER = "sharebus-provider"
TRACE_ID = "sharebus-trace-id"
# Stable per published record: a subscriber that sees the same id twice (after a router restart
# under at-least-once delivery) has seen the same record twice.
RECORD_ID = "sharebus-record-id"
# The longest record, trace or corrected id the router passes on (publishers check it before sending): ids are
# uuids in practice, and the bound keeps a header from being a second payload.
MAX_ID_BYTES = 200
PUBLISHED_NS = "sharebus-published-ns"
# Set by a provider on a correction: the record id of the record it corrects (a dispute's answer).
CORRECTS = "sharebus-corrects"
CONSUMER = "sharebus-consumer"
MODE = "sharebus-mode"
GRANT_ID = "sharebus-grant-id"
# On a delivery without a record key: the key field the consumer's grant does not show (its name only),
# so a subscriber can tell a withheld key from a record published without one.
KEY_WITHHELD = "sharebus-key-withheld"
# Where a held (periodic) record was published: its source topic, partition and offset.
ORIGIN = "sharebus-origin"
# Periodic batches: every record of a batch carries the batch id, its window, the record count
# and its index; a final marker record (no value) carries BATCH_END so that a subscriber knows
# the batch is over even when the batch spans partitions or is empty.
BATCH_ID = "sharebus-batch-id"
BATCH_START = "sharebus-batch-period-start"
BATCH_END_TIME = "sharebus-batch-period-end"
BATCH_COUNT = "sharebus-batch-count"
BATCH_SEQ = "sharebus-batch-seq"
BATCH_END = "sharebus-batch-end"
# A record replayed from history for one new subscriber: the backfill request's id.
BACKFILL = "sharebus-backfill"
# The quality rules a delivered record failed (``field:kind`` ids, comma-separated), when its class
# flags failures instead of rejecting them. Set by the router only (sharebus_router.bus_headers).
QUALITY = "sharebus-quality"
# Release markers on the held topic.
MARKER = "sharebus-marker"
MARKER_WINDOW = "sharebus-marker-window"

HeaderList = list[tuple[str, bytes]]


RawHeaders = Iterable[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None


def header_map(headers: RawHeaders) -> dict[str, bytes]:
    """Normalises the header shapes of confluent-kafka (list of tuples) and faust (mapping)."""
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {key: value.encode() if isinstance(value, str) else value for key, value in items if value is not None}


def header_list(headers: RawHeaders) -> HeaderList:
    """The headers in order, as (name, bytes) pairs; valueless headers dropped."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(key, value.encode() if isinstance(value, str) else value) for key, value in items if value is not None]


def text(headers: Mapping[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value.decode("utf-8", "replace") if value is not None else None


def record_identity(provider: str | None, data_class: str | None, record_id: str | None) -> str | None:
    """What a subscriber tells repeats by: the record id within its provider's class, None without an id.

    A record id is the publisher's to choose, so an id alone would let one department's records pass
    for repeats of another's (and be dropped unseen). The provider and class headers are the router's.
    """
    if record_id is None:
        return None
    return f"{provider or ''}\n{data_class or ''}\n{record_id}"


def identity_in(headers: Mapping[str, bytes]) -> str | None:
    """``record_identity`` of a delivered message's headers."""
    return record_identity(text(headers, PROVIDER), text(headers, DATA_CLASS), text(headers, RECORD_ID))
