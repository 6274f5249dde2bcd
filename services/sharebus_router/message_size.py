"""The size of a message as the producer counts it, so that the router never sends one Kafka refuses.

aiokafka refuses a message over its ``max_request_size`` by raising from ``send()``, which would end the
route agent on one record. The router checks first and dead-letters instead.
"""

from __future__ import annotations

from collections.abc import Iterable

# aiokafka's estimate is the batch header (61 bytes) + the largest record overhead (21) + the contents with
# a varint length each (at most 5 bytes for the key, the value and the header count). Ours rounds every
# part up, so a message that fits here fits there.
_OVERHEAD = 100
_PER_HEADER = 10


def message_size(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]]) -> int:
    size = _OVERHEAD + len(key or b"") + len(value or b"")
    for name, raw in headers:
        # Header names are ASCII but for a publisher's own: its length is then its size, without encoding.
        size += _PER_HEADER + (len(name) if name.isascii() else len(name.encode("utf-8", "surrogatepass")))
        size += len(raw) if raw is not None else 0
    return size
