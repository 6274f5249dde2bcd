"""What a release's audit facts say, and what is counted once Kafka has them (release.py sends them).

The first attempt's facts decide every record of the batch for every target and denial of the route; a
retry's withdraw the deliveries of the plan targets it withholds (docs/audit.md). Nothing here sends or
waits: the counts are the caller's to make once the facts are acknowledged.
"""

from __future__ import annotations

from typing import Any

from sharebus_router import audit_facts
from sharebus_router.held_records import record_fact
from sharebus_router.release_plan import EXPIRED_BEFORE_RELEASE, Ready, Withheld, target_name
from sharebus_router.routes import ClassRoute, Target

Decisions = list[list[dict[str, Any]]]


def first_decisions(route: ClassRoute, records: list[Ready], targets: list[tuple[Target, bool]]) -> Decisions:
    """Each record's decisions: delivered to every live target, expired for the others, and the denials."""
    decisions: Decisions = [[] for _ in records]
    for index, (target, is_live) in enumerate(targets):
        for ready, made in zip(records, decisions, strict=True):
            delivered = ready.deliveries[index]
            reason = None if is_live else "grant_expired"
            made.append(
                audit_facts.decision(target.consumer, target.grant_id, is_live, reason, delivered, target.level)
            )
    for denial in route.denials:
        for made in decisions:
            made.append(
                audit_facts.decision(denial.consumer, denial.grant_id, False, denial.reason, None, denial.level)
            )
    return decisions


def count_first(route: ClassRoute, records: list[Ready], targets: list[tuple[Target, bool]]) -> None:
    """The denials of the first attempt's facts, acknowledged: its expired targets and the route's denials."""
    for target, is_live in targets:
        if not is_live:
            target.expired.inc(len(records))
    for denial in route.denials:
        denial.counter.inc(len(records))


def withdrawals(records: list[Ready], withheld: list[Withheld]) -> Decisions:
    """Each record's withdrawal of its deliveries to the withheld targets."""
    return [
        [audit_facts.withdrawal(gone.consumer, gone.grant_id, gone.reason, gone.level) for gone in withheld]
        for _ready in records
    ]


def count_withdrawn(route: ClassRoute, records: list[Ready], withheld: list[Withheld]) -> None:
    """The withdrawal, acknowledged: the deliveries of targets whose grant expired count as expired."""
    names = {target_name(target): target for target in route.targets}
    for gone in withheld:
        target = names.get(gone.name)
        if target is not None and gone.reason == EXPIRED_BEFORE_RELEASE:
            target.expired.inc(len(records))


def facts(route: ClassRoute, records: list[Ready], decisions: Decisions, quality: bool = True) -> list[dict[str, Any]]:
    """``quality``: whether the facts carry each record's verdict (a withdrawal's do not: its first fact did)."""
    return [
        record_fact(route, ready.record, made, ready.verdict if quality else None)
        for ready, made in zip(records, decisions, strict=True)
        if made
    ]
