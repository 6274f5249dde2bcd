"""Periodic classes on the real broker: held, released once per window as one whole batch, across restarts.

The router's clock is moved with its skew file, so no test waits for a real hour or day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sharebus_core import headers as h
from sharebus_grants import GrantService
from sharebus_sdk import Batch
from tests.integration.conftest import Bus, ClockedBus
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.keys import control_keys
from tests.support.records import STATS, publish_records, stats
from tests.support.router import wait_routed
from tests.support.subscribe import collect

ROSTER = "301001005/000001"  # hourly, conditional, inspector_id_number sensitive; tax-levy subscribes


def roster(seq: int) -> dict[str, Any]:
    return {
        "uscc": f"91500000MA{seq:07d}X",
        "inspector_id_number": "11010519491231002X",
        "district_code": "500103",
        "seq": seq,
    }


def held(bus: Bus, expected: int) -> int:
    """Distinct records (not markers) on the held topic, once at least ``expected`` are there.

    Distinct by record id: a killed router's successor holds some records a second time.
    """

    def count() -> int:
        total = end_offsets(bus.access, bus.topics.held)
        metas = [h.header_map(m.headers()) for m in read_all(bus.access, bus.topics.held, total, timeout_s=5)]
        return len({meta[h.RECORD_ID] for meta in metas if h.MARKER not in meta})

    return eventually(count, lambda n: n >= expected, timeout_s=60)


def end_markers(bus: Bus, system: str) -> list[dict[str, bytes]]:
    topic = bus.topics.delivery(system)
    messages = read_all(bus.access, topic, end_offsets(bus.access, topic), timeout_s=20)
    # In the order they were sent: two batches' markers can sit in different partitions, read in any order.
    messages.sort(key=lambda m: (m.timestamp()[1], m.partition(), m.offset()))
    metas = [h.header_map(m.headers()) for m in messages]
    return [meta for meta in metas if h.BATCH_END in meta]


def approve_roster_grant(bus: Bus) -> None:
    grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
    grant = grants.apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=ROSTER,
        purpose="inspection planning",
        scenario="joint inspections",
        fields=["uscc", "inspector_id_number", "seq"],
        masked_fields=["inspector_id_number"],
    )
    grants.approve(grant.grant_id, department="AMR")
    wait_routed(bus.router, 2)


def test_each_window_is_released_once_whole_to_each_entitled_subscriber(clocked: ClockedBus) -> None:
    bus = clocked.bus
    approve_roster_grant(bus)
    hourly, daily = clocked.window(ROSTER), clocked.window(STATS)
    publish_records(bus.settings, ROSTER, [roster(seq) for seq in range(7)])
    publish_records(bus.settings, STATS, [stats(seq) for seq in range(4)])
    assert held(bus, 11) == 11
    # Held, not forwarded: nothing reaches a subscriber before its window ends.
    assert end_offsets(bus.access, bus.topics.delivery("tax-levy")) == 0
    assert end_offsets(bus.access, bus.topics.delivery("hrss-si")) == 0

    clocked.move_clock_past(hourly.end)
    first = collect(bus.settings, "tax-levy", 0, expected_batches=1).batches
    assert len(first) == 1
    batch = first[0]
    assert (batch.data_class, batch.provider, batch.consumer) == (ROSTER, "AMR", "tax-levy")
    assert (batch.period_start, batch.period_end) == (hourly.start, hourly.end)
    assert sorted(r.value["seq"] for r in batch.records) == list(range(7))
    # The grant's field rules apply to batch records as to real-time ones.
    for record in batch.records:
        assert set(record.value) == {"uscc", "inspector_id_number", "seq"}
        assert record.value["inspector_id_number"] == "110105********002X"
        assert record.mode == "periodic"
        assert record.batch is not None
        assert record.batch.count == 7

    clocked.move_clock_past(daily.end)
    daily_batches = collect(bus.settings, "hrss-si", 0, expected_batches=1).batches
    assert [sorted(r.value["seq"] for r in b.records) for b in daily_batches] == [[0, 1, 2, 3]]
    assert (daily_batches[0].period_start, daily_batches[0].period_end) == (daily.start, daily.end)

    # One hourly window more has ended unless the day ended with the same hour: it was empty.
    empty_hours = 0 if daily.end == hourly.end else 1
    # The subscriber group has the first batch behind it; it receives only what came since.
    later = collect(bus.settings, "tax-levy", 0, idle_timeout_s=5, expected_batches=empty_hours).batches
    assert [len(b.records) for b in later] == [0] * empty_hours
    ids = [m[h.BATCH_ID] for m in end_markers(bus, "tax-levy")]
    assert len(ids) == len(set(ids)) == 1 + empty_hours
    assert len(end_markers(bus, "hrss-si")) == 1
    # Nobody else receives anything; the denied consumers are counted per record.
    assert end_offsets(bus.access, bus.topics.delivery("psb-case")) == 0
    url = bus.router.metrics_url
    labels = {"data_class": ROSTER, "consumer": "tax-levy", "mode": "periodic", "share_type": "conditional"}
    assert metric(url, "sharebus_calls_total", **labels) == 1 + empty_hours  # a call is one batch
    assert metric(url, "sharebus_records_total", **labels) == 7
    assert metric(url, "sharebus_batches_released_total", data_class=ROSTER, outcome="delivered") == 1
    assert metric(url, "sharebus_batches_released_total", data_class=ROSTER, outcome="empty") == empty_hours
    assert metric(url, "sharebus_freshness_window_delivered", data_class=STATS) == 1


def test_a_restart_mid_window_loses_nothing_and_releases_nothing_twice(clocked: ClockedBus) -> None:
    bus = clocked.bus
    daily = clocked.window(STATS)
    publish_records(bus.settings, STATS, [stats(seq) for seq in range(50)])
    assert held(bus, 50) == 50
    clocked.restart_router("second", kill=True)  # mid-window
    publish_records(bus.settings, STATS, [stats(seq) for seq in range(50, 80)])
    assert held(bus, 80) == 80

    clocked.move_clock_past(daily.end)
    batches = collect(bus.settings, "hrss-si", 0, expected_batches=1).batches
    assert len(batches) == 1
    assert sorted(r.value["seq"] for r in batches[0].records) == list(range(80))
    assert len({r.record_id for r in batches[0].records}) == 80

    # A restart after the release does not release the window again: the next marker the new
    # router acts on is the next window's, which is empty.
    clocked.restart_router("third")
    clocked.move_clock_past(daily.end + dt.timedelta(days=1))
    later = collect(bus.settings, "hrss-si", 0, expected_batches=1).batches
    assert [len(b.records) for b in later] == [0]
    markers = end_markers(bus, "hrss-si")
    assert [m[h.BATCH_COUNT] for m in markers] == [b"80", b"0"]
    assert len({m[h.BATCH_ID] for m in markers}) == 2


def test_batches_are_whole_units_in_the_sdk(clocked: ClockedBus) -> None:
    bus = clocked.bus
    daily = clocked.window(STATS)
    publish_records(bus.settings, STATS, [stats(seq) for seq in range(30)])
    assert held(bus, 30) == 30
    clocked.move_clock_past(daily.end)
    received = collect(bus.settings, "hrss-si", 0, expected_batches=1)
    assert received.deliveries == []  # batch records are not handed out one by one
    assert isinstance(received.batches[0], Batch)
    assert len(received.batches[0].records) == 30
