"""A delivery decided, then withdrawn: how a reader of the trail tells the two apart (docs/audit.md).

A periodic release writes its window's facts before its deliveries; a retry that finds a planned target's
grant revoked or expired sends it nothing and writes a ``withdraw`` decision per record instead
(``sharebus_router.release``). The trail is append-only, so the ``deliver`` event stays: every reader that
says who received a record (``sharebus audit who``, ``sharebus audit prove``, the disputes' delivery index)
takes a delivery followed by a withdrawal of the same key as no delivery.

The key is the audit partition, the mode, the backfill (none for a withdrawal), the record's origin (its
source topic, partition and offset) and the consumer and grant. The router writes both facts of a record
under its origin's facts key (``topic:partition``), so both are chained in one audit partition, the
withdrawal after the delivery; a withdrawal undoes the deliveries of its key chained before it there. A
backfill's delivery (it names its backfill) is never withdrawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DELIVER = "deliver"
WITHDRAW = "withdraw"

Scalar = str | int | float | bool | None
WithdrawalKey = tuple[int, Scalar, Scalar, Scalar, Scalar, Scalar, Scalar, Scalar]


def _scalar(value: Any) -> Scalar:
    # A hand-made event may hold anything: a key part that is not a scalar is taken by its text.
    return value if value is None or isinstance(value, str | int | float | bool) else repr(value)


def withdrawal_key(partition: int, event: Mapping[str, Any]) -> WithdrawalKey | None:
    """The key a ``deliver`` event and the ``withdraw`` events that undo it share (None: no origin, so
    nothing can withdraw it). ``partition``: the audit partition the event was read from."""
    source = event.get("source")
    if not isinstance(source, Mapping):
        return None
    return (
        partition,
        _scalar(event.get("mode")),
        _scalar(event.get("backfill")),
        _scalar(source.get("topic")),
        _scalar(source.get("partition")),
        _scalar(source.get("offset")),
        _scalar(event.get("consumer")),
        _scalar(event.get("grant_id")),
    )
