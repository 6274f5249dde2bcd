"""A subscriber that goes live while a periodic window is being released gets that window by its backfill.

Its held hand-over point was the ended window's start, while the release (its first attempt had read the
routes, a retry sends only to the plan) left it out: the window reached it neither in the batch nor by the
backfill, which replays only below the point. Now no point is recorded while a window is being released;
the sweep records it once the new state is written, at the next window's start.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, NamedTuple

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_core.headers import HeaderList
from sharebus_core.kafka import KafkaAccess
from sharebus_router.backfill import Backfiller
from sharebus_router.handover import HandoverLedger, handover_key
from sharebus_router.live_points import PointKeeper
from sharebus_router.periodic import HoldState, on_release
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_release_audit import releaser
from tests.unit.test_release_retry import HRSS, Keeping, audited_then_failed, hrss_grant
from tests.unit.test_release_robust import roster_held, roster_seqs, to, window_of
from tests.unit.test_router_release import ROSTER, roster_grant


class TP(NamedTuple):
    topic: str
    partition: int


@pytest.fixture
def harness() -> Harness:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    harness.grant(roster_grant())
    return harness


def keeper_of(harness: Harness, state: Any) -> PointKeeper:
    """The held partition's owner (partition 0, where the window's state is), as the router wires it."""

    async def write(entry: Any) -> None:
        pass

    async def committed(topics: list[str]) -> dict[tuple[str, int], int]:
        return {}

    async def read_ledger() -> list[Any]:
        return []

    harness.table.ledger = HandoverLedger()
    keeper = PointKeeper(harness.table, TOPICS, 8, committed, write, read_ledger, lambda: True)
    harness.table._on_handover = write
    harness.table.points_for = keeper.points_for
    keeper.hold_state = lambda code: state() if code == ROSTER else None
    keeper.on_assigned([TP(TOPICS.held, 0)])
    return keeper


def hrss_ranges(harness: Harness) -> list[tuple[str, int, int, int]]:
    backfiller = Backfiller(
        harness.table, TOPICS, harness.handler, harness.send, harness.metrics, KafkaAccess(bootstrap="127.0.0.1:1")
    )
    route = harness.table.routes[TOPICS.source(ROSTER)]
    target = next(t for t in route.targets if t.consumer == "hrss-si")
    ranges = backfiller._ranges(route, target)
    assert not isinstance(ranges, str), ranges
    return ranges


def hrss_point(harness: Harness) -> dict[int, int] | None:
    entry = harness.table.ledger.get(handover_key("hrss-si", ROSTER, "g-h"))
    return entry.live_from if entry is not None else None


def test_a_subscriber_live_before_a_retry_gets_the_audited_window_by_its_backfill(harness: Harness) -> None:
    batches, holding = audited_then_failed(harness)  # window [0, 10): plan (tax-levy) kept, batch not sent
    keeper = keeper_of(harness, lambda: holding.state)

    harness.grant(hrss_grant())  # approved before the retry, which sends only to the plan
    asyncio.run(keeper.sweep_held())
    assert hrss_point(harness) is None  # the window's release is pending: no point at its start

    assert holding.attempt(harness, batches, 11, roster_held(harness, range(3)))
    assert roster_seqs(harness, to(harness, HRSS)) == []  # not in the retry's batch...
    asyncio.run(keeper.sweep_held())
    assert hrss_point(harness) == {0: holding.state.since}
    # ... and in its backfill: every held offset of the released window is below the point.
    [(_topic, _partition, start, end)] = hrss_ranges(harness)
    assert all(start <= offset < end for offset in range(3))


def test_a_subscriber_live_while_a_first_attempt_runs_gets_the_window_by_its_backfill(harness: Harness) -> None:
    window = window_of(harness, ROSTER)
    holding = Keeping(window)
    batches = releaser(harness)
    keeper = keeper_of(harness, lambda: holding.state)
    working = batches.send

    async def approve_meanwhile(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        if topic == TOPICS.audit_facts and hrss_point(harness) is None and "g-h" not in str(harness.table.grants()):
            # The grant follower installs hrss-si after the release read the routes.
            harness.table.on_grant(hrss_grant())
            await harness.table.rebuild(ROSTER)
        await working(topic, key, value, headers)

    batches.send = approve_meanwhile

    async def release() -> None:
        due = on_release(holding.state, window.window_id, 10, harness.catalogue.data_class(ROSTER).update, window.end)
        assert due is not None
        keeper.releasing.add(ROSTER)  # as holding.py does, from before the release reads the routes
        try:
            await batches.release(ROSTER, due.window, roster_held(harness, range(3)))
            holding.state = due.after
        finally:
            keeper.releasing.discard(ROSTER)

    asyncio.run(release())
    assert "hrss-si" in [t.consumer for t in harness.table.routes[TOPICS.source(ROSTER)].targets]
    assert roster_seqs(harness, to(harness, HRSS)) == []  # the attempt had read the routes before
    assert hrss_point(harness) is None
    asyncio.run(keeper.sweep_held())
    assert hrss_point(harness) == {0: 11}
    [(_topic, _partition, start, end)] = hrss_ranges(harness)
    assert all(start <= offset < end for offset in range(3))


def test_a_subscriber_live_while_the_window_is_open_gets_it_in_the_batch(harness: Harness) -> None:
    """Control: outside a release, the point is the open window's start and the batch carries the window."""
    window = window_of(harness, ROSTER)
    holding = Keeping(window)
    keeper = keeper_of(harness, lambda: holding.state)
    harness.grant(hrss_grant())
    assert hrss_point(harness) == {0: 0}
    assert holding.attempt(harness, releaser(harness), 10, roster_held(harness, range(3)))
    assert roster_seqs(harness, to(harness, HRSS)) == [0, 1, 2]
    assert keeper.releasing == set()


def test_an_audited_state_read_back_keeps_the_point_waiting() -> None:
    """``audited`` is durable (the changelog): a next owner after a crash waits as well."""
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    harness.grant(roster_grant())
    window = window_of(harness, ROSTER)
    kept = dataclasses.replace(HoldState(window, 0, 0), audited=("tax-levy|g-r",), upto=10)
    state = HoldState.from_json(kept.to_json())
    keeper = keeper_of(harness, lambda: state)
    harness.grant(hrss_grant())
    assert keeper.releasing_now(ROSTER)
    assert hrss_point(harness) is None
