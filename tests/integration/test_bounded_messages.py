"""Releases and backfills big enough that their audit facts once passed the broker's 1 MB limit.

Before facts were bounded, a window of ~1,500 records in one partition was retried every second
forever, and a backfill of ~2,000 records always failed. The window uses the issue's target size
(20,000 records). The backfill replays 10,000 records, not the target's 50,000: on this machine
publishing and routing 50,000 first takes longer than the suite's 300 s test timeout. Its facts are
still five times past the old failure point (2,000-record chunks of facts of ~500 bytes each).
"""

from __future__ import annotations

import json

from sharebus_core.backfill_log import BackfillState, wait_outcome
from sharebus_grants import GrantService
from sharebus_ops.backfill import request_backfill
from tests.integration.conftest import Bus, ClockedBus
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.keys import control_keys
from tests.support.records import ENTERPRISE, STATS, publish_enterprises, publish_records, stats
from tests.support.router import wait_routed

WINDOW_RECORDS = 20_000
BACKFILL_RECORDS = 10_000


def facts_messages(bus: Bus) -> list[bytes]:
    """Every facts message, each checked against the router's default bound."""
    from sharebus_router.audit_facts import DEFAULT_MAX_BYTES

    total = end_offsets(bus.access, bus.topics.audit_facts)
    messages = read_all(bus.access, bus.topics.audit_facts, total, timeout_s=60)
    assert len(messages) == total
    values = [m.value() or b"" for m in messages]
    assert max(len(v) for v in values) <= DEFAULT_MAX_BYTES
    return values


def decisions_for(values: list[bytes], consumer: str, mode: str) -> int:
    return sum(
        1
        for value in values
        for fact in json.loads(value)["records"]
        if fact["mode"] == mode
        for made in fact["decisions"]
        if made["consumer"] == consumer
    )


def test_a_window_of_20000_records_in_one_partition_is_released_and_audited(clocked: ClockedBus) -> None:
    bus = clocked.bus
    url = bus.router.metrics_url
    daily = clocked.window(STATS)
    publish_records(bus.settings, STATS, (stats(seq) for seq in range(WINDOW_RECORDS)))
    received = eventually(
        lambda: metric(url, "sharebus_records_received_total", data_class=STATS),
        lambda n: n >= WINDOW_RECORDS,
        timeout_s=180,
    )
    assert received == WINDOW_RECORDS

    clocked.move_clock_past(daily.end)
    released = eventually(
        lambda: metric(url, "sharebus_batches_released_total", data_class=STATS, outcome="delivered"),
        lambda n: n >= 1,
        timeout_s=180,
    )
    assert released == 1
    # Every record and one end marker, once: the release was not retried.
    assert end_offsets(bus.access, bus.topics.delivery("hrss-si")) == WINDOW_RECORDS + 1
    assert metric(url, "sharebus_records_total", data_class=STATS, consumer="hrss-si") == WINDOW_RECORDS
    values = facts_messages(bus)
    assert decisions_for(values, "hrss-si", "periodic") == WINDOW_RECORDS


def test_a_backfill_of_10000_records_completes_and_is_audited(bus: Bus) -> None:
    publish_enterprises(bus.settings, range(BACKFILL_RECORDS))
    url = bus.router.metrics_url
    received = eventually(
        lambda: metric(url, "sharebus_records_received_total", data_class=ENTERPRISE),
        lambda n: n >= BACKFILL_RECORDS,
        timeout_s=240,
    )
    assert received == BACKFILL_RECORDS
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
    wait_routed(bus.router, 1)
    request = request_backfill(
        bus.catalogue, bus.access, bus.topics, "HRSS", "hrss-si", ENTERPRISE, verifier=control_keys().verifier
    )
    outcome = wait_outcome(bus.access, bus.topics.backfill, request.request_id, timeout_s=300)
    assert outcome is not None
    assert (outcome.state, outcome.reason, outcome.records) == (BackfillState.DONE, None, BACKFILL_RECORDS)
    assert end_offsets(bus.access, bus.topics.delivery("hrss-si")) == BACKFILL_RECORDS
    assert metric(url, "sharebus_backfill_records_total", consumer="hrss-si") == BACKFILL_RECORDS
    values = facts_messages(bus)
    backfilled = sum(
        1 for value in values for fact in json.loads(value)["records"] if fact.get("backfill") == request.request_id
    )
    assert backfilled == BACKFILL_RECORDS
