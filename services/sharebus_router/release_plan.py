"""Who a periodic window's batch goes to, and what each receives: the first attempt's targets, a retry's
(the audited plan's targets not done), the ones a retry withholds, and the batch's headers (release.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sharebus_core import headers as h
from sharebus_core.headers import HeaderList
from sharebus_router.held_records import HeldRecord
from sharebus_router.routes import ClassRoute, Target
from sharebus_rules.periods import Window
from sharebus_rules.quality import Verdict

log = logging.getLogger(__name__)

# The targets a window's audit facts name as delivered, as ``consumer|grant`` (``target_name``).
Plan = tuple[str, ...]
Audited = Callable[[Plan], Awaitable[None]]
# Keeps one plan target (``target_name``) as done: its batch, or its deliveries' withdrawal, acknowledged.
Done = Callable[[str], Awaitable[None]]
# Why a retry withholds a plan target's batch (the reason of its ``withdraw`` decisions).
REVOKED_BEFORE_RELEASE = "grant_revoked_before_release"
EXPIRED_BEFORE_RELEASE = "grant_expired_before_release"


@dataclass(frozen=True, slots=True)
class Ready:
    """A held record ready for its batch: its headers (the bus's; flagged per target as it is sent), its
    verdict and what each of the route's targets receives of it, in the targets' order (None for a target
    whose grant has expired)."""

    record: HeldRecord
    verdict: Verdict | None
    deliveries: tuple[bytes | None, ...]


def target_name(target: Target) -> str:
    return f"{target.consumer}|{target.grant_id or ''}"


@dataclass(frozen=True, slots=True)
class Withheld:
    """A plan target a retry does not send the batch to: ``name`` as the plan holds it, why, and its level."""

    name: str
    reason: str
    level: Mapping[str, str] = field(default_factory=dict)

    @property
    def consumer(self) -> str:
        return self.name.split("|", 1)[0]

    @property
    def grant_id(self) -> str | None:
        return self.name.split("|", 1)[1] or None


def batch_headers(batch: str, window: Window, count: int) -> HeaderList:
    return [
        (h.BATCH_ID, batch.encode()),
        (h.BATCH_START, window.start.isoformat().encode()),
        (h.BATCH_END_TIME, window.end.isoformat().encode()),
        (h.BATCH_COUNT, str(count).encode()),
    ]


def first_targets(route: ClassRoute, now_s: float) -> list[tuple[Target, bool]]:
    """The route's targets, each with whether it receives the batch: its grant not expired at ``now_s``."""
    return [(target, target.expires_at is None or now_s < target.expires_at) for target in route.targets]


def retry_targets(
    route: ClassRoute, batch: str, audited: Plan, done: set[str], now_s: float
) -> tuple[list[tuple[Target, bool]], list[Withheld]]:
    """On a retry after the facts: the plan's targets not done, in the plan's order, that still receive the
    batch (their route there, their grant not expired at ``now_s``), and those withheld, with why."""
    names = {target_name(target): target for target in route.targets}
    sending: list[tuple[Target, bool]] = []
    withheld: list[Withheld] = []
    for name in audited:
        if name in done:
            continue
        target = names.get(name)
        if target is None:
            # Revoked (or its consumer removed) between the facts and the retry: no route renders it.
            withheld.append(Withheld(name, REVOKED_BEFORE_RELEASE))
        elif target.expires_at is not None and now_s >= target.expires_at:
            withheld.append(Withheld(name, EXPIRED_BEFORE_RELEASE, target.level))
        else:
            sending.append((target, True))
    if withheld:
        log.error(
            "%s was audited as delivered to %s, whose grants ended before the retry; not sent to them, "
            "their deliveries withdrawn in the audit trail",
            batch,
            [(w.name, w.reason) for w in withheld],
        )
    return sending, withheld
