"""Several router workers in one consumer group, on the real broker, with records flowing the whole time.

Workers join, are SIGKILLed and leave while a provider keeps publishing: every record is delivered
and the subscriber hands none out twice; a backfill stays gap-free and without overlap when a worker
dies under it; a periodic window whose owner is killed mid-release is released once, whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharebus_core import headers as h
from sharebus_core.backfill_log import BackfillState, wait_outcome
from sharebus_grants import GrantService
from sharebus_ops.backfill import request_backfill
from sharebus_router.held_points import held_partition
from sharebus_router.settings import RouterSettings
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus, ClockedBus, router_with_clock
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.keys import control_keys
from tests.support.records import ENTERPRISE, STATS, enterprise, publish_enterprises, publish_records, stats
from tests.support.registry import RegistryProcess
from tests.support.router import RouterProcess, start_router, wait_routed
from tests.support.subscribe import collect
from tests.support.workers import Flow, readyz, serving

pytestmark = pytest.mark.timeout(900)


def worker(bus: Bus, registry: RegistryProcess, work_dir: Path, name: str) -> RouterProcess:
    return start_router(bus.services["router"], bus.namespace, registry.url, FIXTURE_CATALOGUE, work_dir / name)


def routed(routers: list[RouterProcess]) -> float:
    """Records received by the workers still running (each counts its own partitions' records)."""
    total = 0.0
    for router in routers:
        if router.service.alive():
            total += metric(router.metrics_url, "sharebus_records_received_total", data_class=ENTERPRISE)
    return total


def flows_on(flow: Flow, routers: list[RouterProcess], more: int) -> None:
    """Returns once ``more`` further records were published and the running workers routed more too."""
    published, seen = flow.next, routed(routers)
    assert eventually(lambda: flow.next, lambda n: n >= published + more, timeout_s=120) >= published + more
    assert eventually(lambda: routed(routers), lambda n: n > seen, timeout_s=120) > seen


def test_workers_join_die_and_leave_while_records_flow(
    bus: Bus, shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    first = bus.router
    with Flow(bus.settings, bus.catalogue, ENTERPRISE, enterprise) as flow:
        second = worker(bus, shared_registry, tmp_path, "second")
        flows_on(flow, [first, second], 300)
        third = worker(bus, shared_registry, tmp_path, "third")  # a third joins
        flows_on(flow, [first, second, third], 300)
        assert first.service.kill() == -9  # SIGKILL: no flush, no commit, no goodbye to the group
        flows_on(flow, [second, third], 300)
        second.stop()  # leaves cleanly (SIGTERM: Faust leaves the group)
        flows_on(flow, [third], 300)
    total = flow.next
    try:
        received = collect(bus.settings, "tax-levy", total, idle_timeout_s=60)
        seqs = [d.value["seq"] for d in received.deliveries]
        missing = sorted(set(range(total)) - set(seqs))
        assert not missing, f"{len(missing)} of {total} never arrived (first {missing[:10]}); {third.service.tail(40)}"
        assert sorted(seqs) == list(range(total))  # the subscriber hands each record out once
        written = end_offsets(bus.access, bus.topics.delivery("tax-levy"))
        assert received.duplicates <= written - total
        print(f"\n{total} records; {written - total} repeats on tax-levy's delivery topic (a join, a kill, a leave)")
    finally:
        third.stop()


def test_a_backfill_stays_whole_when_a_worker_dies_under_it(
    bus: Bus, shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    first = bus.router
    second = worker(bus, shared_registry, tmp_path, "second")
    routers = [first, second]
    history = 5000
    publish_enterprises(bus.settings, range(history))
    # The history is routed before the grant, so that it is history (records the workers had not read
    # yet when the grant took effect would be delivered live, rightly).
    assert eventually(lambda: routed(routers), lambda n: n >= history, timeout_s=180) >= history
    try:
        with Flow(bus.settings, bus.catalogue, ENTERPRISE, enterprise, first=history) as flow:
            grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
            grants.apply(
                department="HRSS",
                requester="clerk Zhao",
                consumer="hrss-si",
                data_class=ENTERPRISE,
                purpose="employer registration checks",
                scenario="social insurance enrolment",
                fields=["uscc", "name", "seq"],
            )
            for router in routers:
                wait_routed(router, 1)
            request = request_backfill(
                bus.catalogue,
                bus.access,
                bus.topics,
                "HRSS",
                "hrss-si",
                ENTERPRISE,
                verifier=control_keys().verifier,
            )
            # The worker that serves backfills dies while it serves this one (or just before).
            server = serving(routers, lambda body: bool(body["serves_backfills"]))
            assert server is not None, [readyz(r) for r in routers]
            # Live deliveries are at most what was published since the grant: past that, history is arriving.
            eventually(
                lambda: end_offsets(bus.access, bus.topics.delivery("hrss-si")) - (flow.next - history),
                lambda n: n > 200,
                60,
            )
            assert server.service.kill() == -9
            survivor = second if server is first else first
            outcome = wait_outcome(bus.access, bus.topics.backfill, request.request_id, timeout_s=180)
            assert outcome is not None, survivor.service.tail(60)
            assert outcome.state is BackfillState.DONE, outcome.reason
            after = flow.next
            eventually(lambda: flow.next, lambda n: n >= after + 200)  # live records keep coming after it
        total = flow.next
        received = collect(bus.settings, "hrss-si", total, idle_timeout_s=60)
        seqs = sorted(d.value["seq"] for d in received.deliveries)
        missing = sorted(set(range(total)) - set(seqs))
        assert not missing, f"{len(missing)} of {total} missing (first {missing[:10]}); {survivor.service.tail(40)}"
        assert seqs == list(range(total))
        # No overlap: no record reached hrss-si both as history and live (read before the SDK drops repeats).
        seq_of = {d.record_id: d.value["seq"] for d in received.deliveries}
        written = read_all(
            bus.access, bus.topics.delivery("hrss-si"), end_offsets(bus.access, bus.topics.delivery("hrss-si"))
        )
        replayed: set[int] = set()
        live: set[int] = set()
        for message in written:
            meta = h.header_map(message.headers())
            (replayed if h.BACKFILL in meta else live).add(seq_of[meta[h.RECORD_ID].decode()])
        both = sorted(replayed & live)
        assert not both, f"{len(both)} records both replayed and live: {both[:10]}"
        assert replayed | live == set(range(total))
        assert len(replayed) >= history
        assert outcome.records == len(replayed)  # the heir served the whole request again
    finally:
        for router in routers:
            router.stop()


def test_a_window_released_while_its_owner_is_killed_is_released_once_whole(
    clocked: ClockedBus, tmp_path: Path
) -> None:
    bus = clocked.bus
    other = router_with_clock(
        bus.services["router"], bus.namespace, clocked.registry, clocked.skew_file, tmp_path / "w2"
    )
    routers = [bus.router, other]
    try:
        daily = clocked.window(STATS)
        count = 4000
        publish_records(bus.settings, STATS, (stats(seq) for seq in range(count)))
        held_topic_end = eventually(lambda: end_offsets(bus.access, bus.topics.held), lambda n: n >= count, 120)
        assert held_topic_end >= count
        partition = held_partition(STATS, RouterSettings.model_fields["held_partitions"].default)
        owner = eventually(
            lambda: serving(routers, lambda body: partition in body["held_partitions"]), lambda r: r is not None, 60
        )
        assert owner is not None
        # Both workers move to the end of the window; the owner starts releasing, and dies doing it.
        clocked.move_clock_past(daily.end)
        delivery = bus.topics.delivery("hrss-si")
        eventually(lambda: end_offsets(bus.access, delivery), lambda n: n > 0, 120)
        assert owner.service.kill() == -9
        heir = other if owner is bus.router else bus.router
        batches = collect(bus.settings, "hrss-si", 0, expected_batches=1, idle_timeout_s=60).batches
        assert len(batches) == 1, heir.service.tail(40)
        assert sorted(r.value["seq"] for r in batches[0].records) == list(range(count))
        # Once: every end marker on the topic is this window's (the heir may have sent it a second time,
        # the same batch, which the SDK hands out once), and the heir releases nothing more of it.
        markers = [
            h.header_map(m.headers())
            for m in read_all(bus.access, delivery, end_offsets(bus.access, delivery), timeout_s=30)
            if h.BATCH_END in h.header_map(m.headers())
        ]
        assert {m[h.BATCH_ID] for m in markers} == {batches[0].batch_id.encode()}
        assert all(m[h.BATCH_COUNT] == str(count).encode() for m in markers)
        assert metric(heir.metrics_url, "sharebus_batches_released_total", data_class=STATS) <= 1
        # Audited once: every record of the window has exactly one delivery to hrss-si in the facts, whichever
        # worker wrote them (the owner writes them, acknowledged, before its first delivery: release.py).
        facts = bus.topics.audit_facts
        audited = [
            (fact["source"]["partition"], fact["source"]["offset"])
            for m in read_all(bus.access, facts, end_offsets(bus.access, facts), timeout_s=30)
            for fact in json.loads(m.value() or b"{}").get("records", [])
            if fact["data_class"] == STATS
            for made in fact["decisions"]
            if made["consumer"] == "hrss-si" and made["decision"] == "deliver"
        ]
        assert len(audited) == count
        assert len(set(audited)) == count
    finally:
        for router in routers:
            router.stop()
