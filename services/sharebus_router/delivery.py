"""A live record's deliveries: rendered and size-checked for every target before any is sent, then sent,
counted and decided for the audit. The last step of the per-record path (handler.py)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from sharebus_core.headers import HeaderList
from sharebus_router import audit_facts
from sharebus_router.bus_headers import published_ns
from sharebus_router.dead_letters import BadRecord, DeadLetterReason
from sharebus_router.decoding import Decoded
from sharebus_router.message_size import message_size
from sharebus_router.metrics import Tally
from sharebus_router.projector import Projector
from sharebus_router.quality_gate import flagged
from sharebus_router.routes import ClassRoute, Target
from sharebus_rules.quality import Verdict

Send = Callable[[str, bytes | None, bytes | None, HeaderList], Awaitable[Any]]
# Room kept on a live delivery for the header a backfill adds when it replays the record (its request id).
BACKFILL_HEADER_RESERVE = 128


class Planned(NamedTuple):
    """What one target gets of a record: a delivery (value and headers), or nothing as its grant expired.

    A named tuple: one is made per record and target, and a frozen dataclass's ``__init__`` costs more.
    """

    target: Target
    value: bytes | None
    headers: HeaderList
    expired: bool = False


def check_size(
    limit: int, key: bytes | None, value: bytes | None, headers: HeaderList, what: str, reserve: int = 0
) -> None:
    """Raises ``BadRecord`` when the message would be larger than ``limit``, the most the router may send."""
    size = message_size(key, value, headers) + reserve
    if size > limit:
        raise BadRecord(
            DeadLetterReason.TOO_LARGE,
            f"{what} would be {size} bytes, more than the {limit} the router may send",
        )


def plan(
    projector: Projector,
    limit: int,
    now_s: float,
    targets: Iterable[Target],
    key: bytes | None,
    value: bytes | None,
    checked: Decoded,
    headers: HeaderList,
    verdict: Verdict | None = None,
) -> list[Planned]:
    """Every target's delivery, rendered and size-checked before any is sent: a record is delivered
    to all its targets or to none. Each is flagged with the failed rules of the fields it receives."""
    planned = []
    for target in targets:
        if target.expires_at is not None and now_s >= target.expires_at:
            planned.append(Planned(target, None, [], expired=True))
            continue
        delivered = projector.render(target, checked, value)
        out = [*flagged(headers, verdict, target.shown), *target.extra_headers]
        check_size(limit, key, delivered, out, f"the delivery to {target.consumer}", BACKFILL_HEADER_RESERVE)
        planned.append(Planned(target, delivered, out))
    return planned


async def deliver(
    send: Send,
    tally: Tally,
    route: ClassRoute,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: HeaderList,
    planned: list[Planned],
    verdict: Verdict | None = None,
) -> dict[str, Any] | None:
    """Sends the planned deliveries and counts them; returns the fact of the record's decisions."""
    decisions: list[dict[str, Any]] = []
    for each in planned:
        target = each.target
        if each.expired:
            # The route is rebuilt within a second; until then the expiry is enforced here.
            tally.add(target.expired)
            decisions.append(
                audit_facts.decision(target.consumer, target.grant_id, False, "grant_expired", None, target.level)
            )
            continue
        await send(target.topic, target.key_of(key), each.value, each.headers)
        tally.add(target.calls)
        tally.add(target.records)
        for crossing in target.crossings:
            tally.add(crossing)
        decisions.append(audit_facts.decision(target.consumer, target.grant_id, True, None, each.value, target.level))
    for denial in route.denials:
        tally.add(denial.counter)
        decisions.append(
            audit_facts.decision(denial.consumer, denial.grant_id, False, denial.reason, None, denial.level)
        )
    published = published_ns(headers)
    if route.targets and published is not None:
        tally.observe(route.latency, max(0.0, (time.time_ns() - published) / 1e9))
    if not decisions:
        return None
    fact = audit_facts.record_fact(
        route.provider, route.data_class, route.mode, topic, partition, offset, key, headers, decisions, route.level
    )
    if verdict is not None:
        fact["quality"] = verdict.as_fact()
    return fact
