"""Revoking one partition mid-claim does not cost the other partitions of the assignment their points.

One claim task served the whole assignment, and revoking any of its partitions cancelled it: after it had
marked every partition ready and recorded their points in memory, but before it had written them. The
partitions kept routed on, their points only in memory (``ledger.has`` keeps them from being recorded again),
so a backfill served by another worker never found them. Now each partition is claimed by a task of its own
and a point recorded is written whatever happens to the claim.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sharebus_core.catalogue import load_catalogue
from sharebus_router.handover import Handover, HandoverLedger
from sharebus_router.live_points import PointKeeper
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_live_points import SOURCE, TP

SUBSCRIBERS = ("tax-levy", "psb-case")  # the class's two subscriptions in the fixture catalogue


def test_revoking_one_partition_mid_claim_still_writes_the_others_points() -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    written: list[Handover] = []
    in_flight, gate, all_written = asyncio.Event(), asyncio.Event(), asyncio.Event()
    wanted = {(consumer, partition) for consumer in SUBSCRIBERS for partition in (0, 1)}

    async def write(entry: Handover) -> None:
        in_flight.set()
        await gate.wait()  # as aiokafka's send waits when a batch is full or metadata unknown
        written.append(entry)
        if wanted <= {(e.consumer, partition) for e in written for partition in e.live_from}:
            all_written.set()

    async def committed(topics: list[str]) -> dict[tuple[str, int], int]:
        return {(SOURCE, 0): 5, (SOURCE, 1): 40, (SOURCE, 2): 9}

    async def read_ledger() -> list[Any]:
        return []

    harness.table.ledger = HandoverLedger()
    keeper = PointKeeper(harness.table, TOPICS, 8, committed, write, read_ledger, lambda: True)
    harness.table.points_for = keeper.points_for

    async def run() -> None:
        keeper.on_assigned([TP(SOURCE, 0), TP(SOURCE, 1), TP(SOURCE, 2)])
        await in_flight.wait()  # the claim is writing its points
        keeper.on_revoked([TP(SOURCE, 2)])  # a second worker joins: partition 2 moves
        gate.set()
        await keeper.claim(SOURCE, 0)
        await keeper.claim(SOURCE, 1)
        await asyncio.wait_for(all_written.wait(), 5)

    asyncio.run(run())
    assert {(SOURCE, 0), (SOURCE, 1)} <= keeper.ready
    assert (SOURCE, 2) not in keeper.ready


def test_revoking_a_partition_waiting_for_a_target_leaves_the_others_claimed() -> None:
    """A partition held back (a point of a target not installed here) is cancelled alone when it moves."""
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    written: list[Handover] = []

    async def write(entry: Handover) -> None:
        written.append(entry)

    async def committed(topics: list[str]) -> dict[tuple[str, int], int]:
        return {(SOURCE, 0): 5, (SOURCE, 2): 9}

    async def read_ledger() -> list[Any]:
        return []

    harness.table.ledger = HandoverLedger()
    keeper = PointKeeper(harness.table, TOPICS, 8, committed, write, read_ledger, lambda: True)
    harness.table.points_for = keeper.points_for
    code = keeper.classes[SOURCE]
    # Another worker made hrss-si live on partition 2; this worker's grant follower is behind.
    harness.table.ledger.record("hrss-si", code, "g-e", SOURCE, {2: 7})

    async def run() -> None:
        harness.table.ready.set()
        keeper.on_assigned([TP(SOURCE, 0), TP(SOURCE, 2)])
        await keeper.claim(SOURCE, 0)  # not held back by partition 2's wait
        keeper.on_revoked([TP(SOURCE, 2)])
        await keeper.claim(SOURCE, 2)  # revoked: returns at once

    asyncio.run(asyncio.wait_for(run(), 5))
    assert (SOURCE, 0) in keeper.ready
    assert (SOURCE, 2) not in keeper.ready
    assert {(e.consumer, p) for e in written for p in e.live_from} == {(c, 0) for c in SUBSCRIBERS}
