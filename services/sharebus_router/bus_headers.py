"""The router owns the bus's ``sharebus-*`` headers; a publisher's copies never pass as the bus's.

Subscribers (the SDK, the gateway) trust these headers: the provider, the consumer, a periodic batch's
id and end marker. If the router passed on whatever a publisher sent, a provider could name another
provider, or end another provider's batch early. So, for every record the router reads:

- the bus sets ``sharebus-class`` and ``sharebus-provider`` from the catalogue (the route), and the
  consumer, mode, grant, batch and backfill headers when it delivers, and ``sharebus-quality`` (the
  rules a flagged record failed, ``quality_gate.flagged``) after these checks;
- the publisher may set only the trace id, the record id, the publish time and the id of the record
  a correction corrects (``sharebus-corrects``); they are checked (one each, short, text; the time a
  decimal number) and passed on;
- a publisher's ``sharebus-class`` must name the topic's class (else the record was published to the
  wrong place: a dead letter, as before);
- any other ``sharebus-*`` header from the publisher is kept under ``publisher-<name>``, plainly the
  publisher's, so nobody reads it as the bus's; other headers pass unchanged.

A record whose headers break these rules is a dead letter with reason ``bad_header``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sharebus_core import headers as h
from sharebus_core.headers import HeaderList
from sharebus_router.dead_letters import BadRecord, DeadLetterReason

BUS_PREFIX = "sharebus-"
PUBLISHER_COPY = "publisher-"
# Headers the publisher sets and the bus passes on, after the checks below.
PUBLISHER_SET = frozenset({h.TRACE_ID, h.RECORD_ID, h.PUBLISHED_NS, h.CORRECTS})
MAX_ID_BYTES = h.MAX_ID_BYTES
# Nanoseconds since 1970 have 19 digits until the year 2286.
MAX_NS_DIGITS = 19

RawHeader = tuple[str, bytes | None]


def _bad(detail: str) -> BadRecord:
    return BadRecord(DeadLetterReason.BAD_HEADER, detail)


def _checked(name: str, raw: bytes | None) -> bytes:
    """A publisher-set header's value, or why it is refused."""
    if raw is None:
        raise _bad(f"{name} has no value")
    if len(raw) > MAX_ID_BYTES:
        raise _bad(f"{name} is {len(raw)} bytes, more than {MAX_ID_BYTES}")
    if not raw.isascii() or not raw.strip() or not raw.decode("ascii").isprintable():
        raise _bad(f"{name} is not printable ASCII text: {raw[:40]!r}")
    if name == h.PUBLISHED_NS and (not raw.isdigit() or len(raw) > MAX_NS_DIGITS):
        raise _bad(f"{name} is not a time in nanoseconds: {raw[:40]!r}")
    return raw


def _check_label(raw: bytes | None, data_class: str, known_classes: Collection[str]) -> None:
    """A record labelled with another class than its topic's was published to the wrong place."""
    if raw is None:
        raise _bad(f"{h.DATA_CLASS} has no value")
    claimed = raw.decode("utf-8", "replace")
    if claimed == data_class:
        return
    if claimed not in known_classes:
        raise BadRecord(
            DeadLetterReason.UNKNOWN_DATA_CLASS,
            f"the record is labelled {claimed[:200]!r}, which is not in the catalogue",
        )
    raise BadRecord(
        DeadLetterReason.CLASS_MISMATCH, f"the record is labelled {claimed} but was published to {data_class}'s topic"
    )


def bus_headers(raw: Iterable[RawHeader], data_class: str, provider: str, known_classes: Collection[str]) -> HeaderList:
    """The headers a record travels on with (see the module's doc); raises ``BadRecord`` when they are bad.

    Idempotent: its own output passes unchanged, so records the router held or replays can go through it again.
    """
    owned: HeaderList = [(h.DATA_CLASS, data_class.encode()), (h.PROVIDER, provider.encode())]
    passed: HeaderList = []
    seen: set[str] = set()
    for name, value in raw:
        if not name.startswith(BUS_PREFIX):
            if value is not None:
                passed.append((name, value))
            continue
        if name in seen and (name in PUBLISHER_SET or name == h.DATA_CLASS):
            raise _bad(f"{name} appears more than once")
        seen.add(name)
        if name == h.DATA_CLASS:
            _check_label(value, data_class, known_classes)
        elif name in PUBLISHER_SET:
            owned.append((name, _checked(name, value)))
        elif name == h.PROVIDER and value == provider.encode():
            continue  # the same as the bus's own: no copy needed
        elif value is not None:
            passed.append((PUBLISHER_COPY + name, value))
    return [*owned, *passed]


def published_ns(headers: HeaderList) -> int | None:
    """The publish time of headers that ``bus_headers`` returned (so a number, when present)."""
    for name, raw in headers:
        if name == h.PUBLISHED_NS:
            return int(raw)
    return None
