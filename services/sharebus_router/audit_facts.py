"""What the router tells the auditor: every decision made for each record.

The data path sends a batch's facts after the batch's deliveries, and commits its offsets only after
flushing the producer (``data_path.py``), so no record is committed without its audit.

Every facts message is bounded (``encode_batch``'s ``max_bytes``): the broker refuses a message
over its limit (1 MB), and a refused send ends the router. A batch becomes as many messages as it
needs, and one fact whose decisions alone pass the bound (a class with very many consumers) is cut
into parts, each the same fact with a slice of its decisions. The auditor makes one event per
decision, so the parts chain exactly as the whole fact would: same events, same order, one
partition (all parts carry the same key).
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from sharebus_core import headers as h
from sharebus_core.audit_fact import audited_text
from sharebus_core.headers import HeaderList

Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]

# The default bound of one facts message: a quarter of the broker's default limit, so the key, the
# record framing and any headroom a broker or producer setting takes never matter.
DEFAULT_MAX_BYTES = 256 * 1024


# Cross-level flows (docs/federation.md): a fact or decision of a district's department carries
# ``<role>_level: "district"`` and ``<role>_district: <code>``; a city's carries nothing (the default).
NO_LEVEL: Mapping[str, str] = {}


def payload_digest(payload: bytes | None) -> str | None:
    return hashlib.sha256(payload).hexdigest() if payload is not None else None


def decision(
    consumer: str | None,
    grant_id: str | None,
    delivered: bool,
    reason: str | None,
    payload: bytes | None = None,
    level: Mapping[str, str] = NO_LEVEL,
) -> dict[str, Any]:
    """``level``: the consumer's level fields when it is a district's (``routes.level_fields``)."""
    made = {
        "consumer": consumer,
        "grant_id": grant_id,
        "decision": "deliver" if delivered else "deny",
        "reason": reason,
        "payload_sha256": payload_digest(payload) if delivered else None,
    }
    if level:
        made.update(level)
    return made


# A correcting decision (periodic releases only, ``release.py``): the delivery an earlier fact of the same
# record decided for this consumer and grant was not made; the release withheld it (``reason`` says why). The
# trail is append-only, so the earlier ``deliver`` stays; a reader takes the two together (docs/audit.md).
WITHDRAW = "withdraw"


def withdrawal(
    consumer: str | None, grant_id: str | None, reason: str, level: Mapping[str, str] = NO_LEVEL
) -> dict[str, Any]:
    """The decision withdrawing a delivery decided earlier and never made: no payload, a reason."""
    made = {"consumer": consumer, "grant_id": grant_id, "decision": WITHDRAW, "reason": reason, "payload_sha256": None}
    if level:
        made.update(level)
    return made


def record_fact(
    provider: str,
    data_class: str,
    mode: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: HeaderList,
    decisions: list[dict[str, Any]],
    level: Mapping[str, str] = NO_LEVEL,
) -> dict[str, Any]:
    """``level``: the provider's level fields when it is a district's (a class federated up)."""
    meta = {name: raw for name, raw in headers if name in (h.TRACE_ID, h.RECORD_ID)}
    fact = {
        "time": time.time(),
        "provider": provider,
        "data_class": data_class,
        "mode": mode,
        "key": audited_text(key),
        "trace_id": audited_text(meta.get(h.TRACE_ID)),
        "record_id": audited_text(meta.get(h.RECORD_ID)),
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "decisions": decisions,
    }
    if level:
        fact.update(level)
    return fact


def _dumps(body: Any) -> bytes:
    """Compact UTF-8 JSON (what ``json.dumps(ensure_ascii=False, separators=(",", ":"))`` gives), ~5x faster."""
    return orjson.dumps(body)


_ENVELOPE = len(b'{"records":[]}')


def split_fact(fact: dict[str, Any], max_bytes: int) -> list[dict[str, Any]]:
    """The fact itself when it fits in a message of ``max_bytes``; else parts with slices of its decisions."""
    decisions = fact["decisions"]
    if _ENVELOPE + len(_dumps(fact)) <= max_bytes or len(decisions) <= 1:
        return [fact]
    base = len(_dumps({"records": [{**fact, "decisions": []}]}))
    parts: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    size = base
    for made in decisions:
        cost = len(_dumps(made)) + 1  # and its comma
        if current and size + cost > max_bytes:
            parts.append({**fact, "decisions": current})
            current, size = [], base
        current.append(made)
        size += cost
    parts.append({**fact, "decisions": current})
    return parts


def _pack(facts: list[dict[str, Any]], max_bytes: int) -> list[bytes]:
    """Facts of one partition, in order, as few ``{"records": [...]}`` bodies as fit in ``max_bytes`` each."""
    envelope = _ENVELOPE
    bodies: list[bytes] = []
    current: list[bytes] = []
    size = envelope
    for fact in facts:
        whole = _dumps(fact)
        # Encoded once: a fact that fits (nearly every one) is not split, so not encoded again.
        parts = [whole] if envelope + len(whole) <= max_bytes else [_dumps(p) for p in split_fact(fact, max_bytes)]
        for encoded in parts:
            if current and size + len(encoded) + 1 > max_bytes:
                bodies.append(b'{"records":[' + b",".join(current) + b"]}")
                current, size = [], envelope
            current.append(encoded)
            size += len(encoded) + 1
    if current:
        bodies.append(b'{"records":[' + b",".join(current) + b"]}")
    return bodies


def encode_batch(facts: list[dict[str, Any]], max_bytes: int = DEFAULT_MAX_BYTES) -> list[tuple[bytes, bytes]]:
    """Messages keyed ``topic:partition`` so that a partition's facts stay in order, none over ``max_bytes``.

    Only a fact whose fixed fields alone pass the bound could still exceed it; ``record_fact`` caps
    every publisher-chosen field, so that takes a bound below a few kilobytes (the settings forbid one).
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fact in facts:
        groups[f"{fact['source']['topic']}:{fact['source']['partition']}"].append(fact)
    return [(key.encode(), body) for key, records in groups.items() for body in _pack(records, max_bytes)]
