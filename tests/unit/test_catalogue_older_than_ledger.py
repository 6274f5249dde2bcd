"""A worker on an older catalogue does not route past a point a newer catalogue's worker wrote.

During a rolling restart that adds a subscription, a worker still on the old catalogue took a partition
whose ledger held the new subscription's point, took the subscription for settled ("no such subscription
here") and routed the partition without it: what it routed past the point reached the subscriber neither
live nor by backfill. Now it holds the partition back and says why; a subscription the catalogue removed
(its points on every partition, all older than the worker) binds nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_router import live_points
from sharebus_router.handover import Handover
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_control_events import Log
from tests.unit.test_live_points import SOURCE, TP, Worker
from tests.unit.test_router_release import ENTERPRISE

# Not in the fixture catalogue: added by a newer one, or removed from this one.
LAND = "land-sys"


def point(live_from: dict[int, int], at: dt.datetime) -> Handover:
    return Handover(LAND, ENTERPRISE, None, SOURCE, live_from, at.isoformat())


def claim_after(worker: Worker, points: list[Handover], wait: float) -> bool:
    """Whether partition 2's claim ends within ``wait`` seconds (the loop's own clock)."""
    log = Log(TOPICS.handover)
    worker.ledger_records += [log.record(p.record_key, p.to_json()) for p in points]

    async def run() -> bool:
        worker.keeper.table.ready.set()
        worker.keeper.on_assigned([TP(SOURCE, 2)])
        claim = asyncio.ensure_future(worker.keeper.claim(SOURCE, 2))
        await asyncio.wait({claim}, timeout=wait)
        done = claim.done()
        claim.cancel()
        return done

    return asyncio.run(run())


def test_a_new_subscriptions_point_holds_the_partition_back(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    worker = Worker(harness, {(SOURCE, 2): 12})
    written = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)  # by a worker on the new catalogue, since
    with caplog.at_level(logging.ERROR, logger=live_points.__name__):
        routed = claim_after(worker, [point({2: 10}, written)], 0.5)
    assert not routed, "the partition must not route past a point of a subscription this catalogue lacks"
    assert (SOURCE, 2) not in worker.keeper.ready
    assert worker.keeper.unclaimed() == 1
    assert "catalogue older than the hand-over ledger; restart with the current catalogue" in caplog.text


def test_an_old_point_on_some_partitions_holds_the_partition_back_too() -> None:
    """Partitions without the point: the subscription is still being made live, whatever the clocks say."""
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    worker = Worker(harness, {(SOURCE, 2): 12})
    written = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert not claim_after(worker, [point({2: 10}, written)], 0.5)


def test_a_removed_subscriptions_points_do_not_hold_the_partition_back() -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    worker = Worker(harness, {(SOURCE, 2): 12})
    written = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    # Every partition of the class has its point, all written before this worker loaded its catalogue.
    assert claim_after(worker, [point({p: 10}, written) for p in range(3)], 5.0)
    assert (SOURCE, 2) in worker.keeper.ready
