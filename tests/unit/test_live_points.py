"""Hand-over points with several router workers: each partition's point from its owner (live_points.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, NamedTuple

import pytest
from aiokafka.partitioner import DefaultPartitioner

from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_router import live_points
from sharebus_router.backfill import Backfiller
from sharebus_router.handover import Handover, HandoverLedger, handover_key
from sharebus_router.held_points import held_partition
from sharebus_router.live_points import PointKeeper
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_control_events import Log
from tests.unit.test_router_release import ENTERPRISE, ROSTER, roster_grant

SOURCE = TOPICS.source(ENTERPRISE)  # three partitions in the fixture catalogue


class TP(NamedTuple):
    topic: str
    partition: int


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


class Worker:
    """A point keeper over the harness's route table, with the group's committed offsets and the ledger's
    records as the test sets them."""

    def __init__(self, harness: Harness, committed: dict[tuple[str, int], int] | None = None) -> None:
        self.committed = committed or {}
        self.ledger_records: list[Any] = []
        self.written: list[Handover] = []

        async def committed_of(topics: list[str]) -> dict[tuple[str, int], int]:
            return {tp: offset for tp, offset in self.committed.items() if tp[0] in topics}

        async def write(entry: Handover) -> None:
            self.written.append(entry)

        async def read_ledger() -> list[Any]:
            return list(self.ledger_records)

        # As in the router, the keeper is wired before any route is installed: no lone router's records.
        harness.table.ledger = HandoverLedger()
        self.keeper = PointKeeper(harness.table, TOPICS, 8, committed_of, write, read_ledger, lambda: True)
        harness.table._on_handover = write  # the router writes both through the same producer
        harness.table.points_for = self.keeper.points_for


def enterprise_grant(consumer: str = "hrss-si", grant_id: str = "g-e") -> Grant:
    return Grant.model_validate(
        {
            **roster_grant().model_dump(),
            "grant_id": grant_id,
            "data_class": ENTERPRISE,
            "consumer": consumer,
            "consumer_department": "HRSS",
            "fields": ("uscc", "seq"),
            "masked_fields": (),
        }
    )


def record(seq: int) -> dict[str, Any]:
    return {
        "uscc": "U",
        "name": "n",
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": seq,
        "note": None,
    }


def test_a_claimed_partition_records_every_target_at_the_committed_offset(harness: Harness) -> None:
    worker = Worker(harness, {(SOURCE, 1): 40})

    async def claim() -> None:
        worker.keeper.on_assigned([TP(SOURCE, 1), TP(TOPICS.held, 0)])
        assert worker.keeper.unclaimed() == 1  # the source partition; a held one needs no claim
        await worker.keeper.claim(SOURCE, 1)

    asyncio.run(claim())
    # The router's /readyz waits for this count to reach 0: assigned and not yet routing is not ready.
    assert worker.keeper.unclaimed() == 0
    for consumer in ("tax-levy", "psb-case"):  # the class's two subscribers
        entry = harness.table.ledger.get(handover_key(consumer, ENTERPRISE, None))
        assert entry is not None
        assert entry.live_from == {1: 40}
    assert sorted(w.record_key for w in worker.written) == [
        f"psb-case|{ENTERPRISE}|subscription|1",
        f"tax-levy|{ENTERPRISE}|subscription|1",
    ]


def test_a_target_going_live_gets_points_on_this_workers_partitions_only(harness: Harness) -> None:
    worker = Worker(harness, {(SOURCE, 1): 40})

    async def run() -> None:
        worker.keeper.on_assigned([TP(SOURCE, 1)])
        await worker.keeper.claim(SOURCE, 1)
        for offset in range(40, 45):
            await harness.handler.handle(SOURCE, 1, offset, b"k", harness.encode(ENTERPRISE, record(offset)), [])
        harness.table.on_grant(enterprise_grant())
        await harness.table.rebuild(ENTERPRISE)

    asyncio.run(run())
    entry = harness.table.ledger.get(handover_key("hrss-si", ENTERPRISE, "g-e"))
    assert entry is not None
    assert entry.live_from == {1: 45}  # partitions 0 and 2 are other workers' to record
    assert worker.written[-1].record_key == f"hrss-si|{ENTERPRISE}|g-e|1"


def test_a_backfill_is_not_served_until_every_partition_has_its_point(harness: Harness) -> None:
    worker = Worker(harness, {(SOURCE, 1): 40})
    # No Kafka: only the ranges are asked for here, nothing is read.
    access = KafkaAccess(bootstrap="127.0.0.1:1")
    backfiller = Backfiller(harness.table, TOPICS, harness.handler, harness.send, harness.metrics, access)

    async def run() -> tuple[Any, Any]:
        worker.keeper.on_assigned([TP(SOURCE, 1)])
        await worker.keeper.claim(SOURCE, 1)
        route = harness.table.routes[SOURCE]
        target = next(t for t in route.targets if t.consumer == "tax-levy")
        early = backfiller._ranges(route, target)
        # The other workers' points arrive through the ledger.
        for partition, offset in ((0, 7), (2, 9)):
            harness.table.ledger.record("tax-levy", ENTERPRISE, None, SOURCE, {partition: offset})
        return early, backfiller._ranges(route, target)

    early, ranges = asyncio.run(run())
    assert isinstance(early, str)
    assert "[0, 2]" in early
    assert ranges == [(SOURCE, 0, 0, 7), (SOURCE, 1, 0, 40), (SOURCE, 2, 0, 9)]


def test_a_partition_waits_for_a_target_another_worker_made_live(harness: Harness) -> None:
    worker = Worker(harness, {(SOURCE, 2): 12})
    # Another worker installed hrss-si's grant and wrote its point on partition 2, then lost the partition.
    log = Log(TOPICS.handover)
    point = Handover("hrss-si", ENTERPRISE, "g-e", SOURCE, {2: 10}, "2026-01-01T00:00:00+00:00")
    worker.ledger_records.append(log.record(point.record_key, point.to_json()))

    async def run() -> tuple[bool, bool]:
        harness.table.ready.set()
        worker.keeper.on_assigned([TP(SOURCE, 2)])
        claim = asyncio.ensure_future(worker.keeper.claim(SOURCE, 2))
        await asyncio.sleep(0.3)
        waited = not claim.done()
        harness.table.on_grant(enterprise_grant())
        await harness.table.rebuild(ENTERPRISE)
        await asyncio.wait_for(claim, 5)
        return waited, claim.done()

    waited, done = asyncio.run(run())
    assert waited, "routing the partition must wait for the grant this worker has not installed yet"
    assert done
    entry = harness.table.ledger.get(handover_key("hrss-si", ENTERPRISE, "g-e"))
    assert entry is not None
    assert entry.live_from == {2: 10}  # the first owner's point stands


class Reports(logging.Handler):
    """Sets ``twice`` once the keeper has logged twice that a partition still waits."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.twice = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "the partition waits for them" in record.getMessage():
            self.count += 1
            if self.count >= 2:
                self.twice.set()


def test_a_partition_waits_for_a_target_past_the_report_interval_instead_of_routing_without_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routing regardless after a while would lose the records past the point for that target."""
    monkeypatch.setattr(live_points, "TARGET_WAIT_S", 0.05)
    worker = Worker(harness, {(SOURCE, 2): 12})
    log = Log(TOPICS.handover)
    point = Handover("hrss-si", ENTERPRISE, "g-e", SOURCE, {2: 10}, "2026-01-01T00:00:00+00:00")
    worker.ledger_records.append(log.record(point.record_key, point.to_json()))
    reports = Reports()
    logging.getLogger(live_points.__name__).addHandler(reports)

    async def run() -> tuple[bool, bool]:
        harness.table.ready.set()
        worker.keeper.on_assigned([TP(SOURCE, 2)])
        claim = asyncio.ensure_future(worker.keeper.claim(SOURCE, 2))
        await reports.twice.wait()  # two report intervals have passed
        still_waiting = not claim.done() and (SOURCE, 2) not in worker.keeper.ready
        harness.table.on_grant(enterprise_grant())
        await harness.table.rebuild(ENTERPRISE)
        await asyncio.wait_for(claim, 5)
        return still_waiting, (SOURCE, 2) in worker.keeper.ready

    try:
        still_waiting, ready = asyncio.run(asyncio.wait_for(run(), 10))
    finally:
        logging.getLogger(live_points.__name__).removeHandler(reports)
    assert still_waiting, "the partition must not route without a target another worker made live"
    assert ready
    assert worker.keeper.unclaimed() == 0


def test_a_revoked_partition_is_never_claimed(harness: Harness) -> None:
    worker = Worker(harness, {(SOURCE, 0): 3})

    async def run() -> None:
        worker.keeper.on_assigned([TP(SOURCE, 0)])
        await worker.keeper.claim(SOURCE, 0)
        worker.keeper.on_revoked([TP(SOURCE, 0)])
        written = len(worker.written)
        await worker.keeper.claim(SOURCE, 0)  # a record still in hand: returns, writes nothing
        assert len(worker.written) == written
        assert (SOURCE, 0) not in worker.keeper.ready

    asyncio.run(run())


def test_the_lowest_point_of_a_partition_is_kept_and_whole_entries_are_complete() -> None:
    ledger = HandoverLedger()
    ledger.record("tax-levy", ENTERPRISE, None, SOURCE, {0: 50})
    ledger.record("tax-levy", ENTERPRISE, None, SOURCE, {0: 30})  # a killed owner's write landing late
    ledger.record("tax-levy", ENTERPRISE, None, SOURCE, {1: 70})
    entry = ledger.get(handover_key("tax-levy", ENTERPRISE, None))
    assert entry is not None
    assert entry.live_from == {0: 30, 1: 70}
    assert entry.key not in ledger.whole
    ledger.record("psb-case", ENTERPRISE, None, SOURCE, {0: 1, 1: 2, 2: 3})  # a lone router's record
    assert handover_key("psb-case", ENTERPRISE, None) in ledger.whole
    assert [e.consumer for e in ledger.on_partition(SOURCE, 0)] == ["psb-case", "tax-levy"]


def test_the_held_partition_is_where_the_producer_puts_the_class() -> None:
    for code in ("301001004/000001", "301001005/000001", "x"):
        assert held_partition(code, 8) == DefaultPartitioner()(code.encode(), list(range(8)), list(range(8)))


def test_a_sweep_of_held_points_looks_again_only_at_rebuilt_routes(harness: Harness) -> None:
    """The keeper's one-second sweep skips a periodic class whose route was swept whole (issue 13)."""
    worker = Worker(harness)
    keeper = worker.keeper
    looked: list[str] = []

    def hold_state(code: str) -> None:
        looked.append(code)

    keeper.hold_state = hold_state
    recovered = False
    keeper.recovered = lambda: recovered
    keeper.on_assigned([TP(TOPICS.held, p) for p in range(8)])
    harness.table.ready.set()
    harness.grant(roster_grant())
    assert not [w for w in worker.written if w.topic == TOPICS.held]  # not recovered: no point yet

    asyncio.run(keeper.sweep_held())
    assert not [w for w in worker.written if w.topic == TOPICS.held]  # still not: looked at again later
    recovered = True
    asyncio.run(keeper.sweep_held())
    held_points = [w for w in worker.written if w.topic == TOPICS.held]
    assert f"tax-levy|{ROSTER}|g-r|" in " ".join(w.record_key for w in held_points)
    swept, written = len(looked), len(worker.written)
    asyncio.run(keeper.sweep_held())
    asyncio.run(keeper.sweep_held())
    assert len(looked) == swept  # nothing changed: nothing looked at
    assert len(worker.written) == written

    harness.grant(roster_grant().model_copy(update={"grant_id": "g-r2", "consumer": "psb-case"}))
    looked.clear()
    asyncio.run(keeper.sweep_held())
    assert set(looked) == {ROSTER}  # the rebuilt route only
    keeper.on_revoked([TP(TOPICS.held, 0)])
    looked.clear()
    asyncio.run(keeper.sweep_held())
    assert ROSTER in looked  # a rebalance looks at every periodic class again
