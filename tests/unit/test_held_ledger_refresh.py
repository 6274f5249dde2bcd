"""A new owner of a held partition reads the hand-over ledger again before it releases a window.

It read the ledger at its start only, so a held point the previous owner wrote since (for a target this
worker's grant follower had not installed yet) was not seen: the window was released without the target,
and the point it then wrote was higher than the previous owner's, which the ledger keeps (the lowest).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sharebus_core.catalogue import load_catalogue
from sharebus_router.handover import Handover, HandoverLedger
from sharebus_router.held_points import held_partition
from sharebus_router.live_points import PointKeeper
from sharebus_router.periodic import HoldState
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_control_events import Log
from tests.unit.test_live_points import TP
from tests.unit.test_release_robust import window_of
from tests.unit.test_router_release import ROSTER

TAX_ROSTER = f"tax-levy|{ROSTER}|g-r"


def test_a_release_waits_until_the_ledger_is_read_after_the_held_partition_is_assigned() -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    part = held_partition(ROSTER, 8)
    ledger_topic: list[Any] = []
    reads: list[int] = []

    async def write(entry: Any) -> None:
        pass

    async def committed(topics: list[str]) -> dict[tuple[str, int], int]:
        return {}

    async def read_ledger() -> list[Any]:
        reads.append(len(ledger_topic))
        return list(ledger_topic)

    harness.table.ledger = HandoverLedger()
    keeper = PointKeeper(harness.table, TOPICS, 8, committed, write, read_ledger, lambda: True)
    harness.table.points_for = keeper.points_for
    keeper.hold_state = lambda code: HoldState(window_of(harness, ROSTER), part, 100) if code == ROSTER else None
    harness.table.ready.set()
    asyncio.run(keeper.refresh())  # this worker's start: the ledger has no point yet

    # The previous owner installed tax-levy's grant g-r and wrote its held point; this worker has not.
    log = Log(TOPICS.handover)
    point = Handover("tax-levy", ROSTER, "g-r", TOPICS.held, {part: 100}, "2026-01-01T00:00:00+00:00")
    ledger_topic.append(log.record(point.record_key, point.to_json()))
    keeper.on_assigned([TP(TOPICS.held, part)])

    assert keeper.lacking_held(ROSTER), "the release must wait for the ledger's read"
    asyncio.run(keeper.sweep_held())
    assert reads == [0, 1]
    assert keeper.lacking_held(ROSTER) == [TAX_ROSTER], "the release must wait for g-r"
    asyncio.run(keeper.sweep_held())
    assert reads == [0, 1]  # once per assignment, not per sweep
