"""Freshness on the real broker: the gauges and the overdue flag follow providers publishing or going silent."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from sharebus_cli.main import main as cli
from sharebus_core.wire import WireFormatError, unframe
from sharebus_router.freshness import FreshnessTracker, newest_records
from sharebus_rules.freshness import FreshnessPolicy
from tests.integration.conftest import Bus, ClockedBus
from tests.support.kafka import eventually, metric
from tests.support.records import STATS, publish_records, stats  # STATS: daily, allowed a day + 1 h

ENTERPRISE = "301001001/000001"  # real-time: allowed silence 24 h by default


def publish_stats(bus: Bus, seq: int) -> None:
    publish_records(bus.settings, STATS, [stats(seq)])


def gauge(bus: Bus, name: str, code: str) -> float:
    return metric(bus.router.metrics_url, name, data_class=code, provider="AMR")


def test_freshness_gauges_and_overdue_flag_follow_the_provider(clocked: ClockedBus) -> None:
    bus = clocked.bus
    # Never seen since the router started: young, not overdue, no last-record time.
    assert gauge(bus, "sharebus_freshness_overdue", STATS) == 0
    assert gauge(bus, "sharebus_freshness_age_seconds", STATS) < 120
    assert gauge(bus, "sharebus_freshness_last_record_timestamp_seconds", STATS) == 0

    publish_stats(bus, 1)
    stamp = eventually(lambda: gauge(bus, "sharebus_freshness_last_record_timestamp_seconds", STATS), lambda v: v > 0)
    assert abs(stamp - clocked.now().timestamp()) < 60  # the router's clock
    assert gauge(bus, "sharebus_freshness_overdue", STATS) == 0

    # The provider goes silent for a day and an hour and a minute more than it may.
    clocked.move_clock_past(clocked.now() + dt.timedelta(days=1, hours=1, minutes=1))
    assert eventually(lambda: gauge(bus, "sharebus_freshness_overdue", STATS), lambda v: v == 1) == 1
    assert gauge(bus, "sharebus_freshness_age_seconds", STATS) > 25 * 3600
    # A real-time class nobody published is overdue after 24 h of silence too.
    assert gauge(bus, "sharebus_freshness_overdue", ENTERPRISE) == 1

    publish_stats(bus, 2)
    assert eventually(lambda: gauge(bus, "sharebus_freshness_overdue", STATS), lambda v: v == 0) == 0
    assert gauge(bus, "sharebus_freshness_age_seconds", STATS) < 60
    assert gauge(bus, "sharebus_freshness_overdue", ENTERPRISE) == 1


def test_freshness_report_lists_each_providers_classes_and_marks_overdue_ones(
    bus: Bus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bus.use_in_env(monkeypatch)
    # The report asks the registry whether each newest record is one the router would route.
    monkeypatch.setenv("SHAREBUS_REGISTRY_URL", bus.registry_url)
    publish_stats(bus, 1)
    capsys.readouterr()
    assert cli(["freshness", "--provider", "AMR", "--json"]) == 0
    report = {item["data_class"]: item for item in json.loads(capsys.readouterr().out)}
    assert set(report) == {c for c, e in bus.catalogue.data_classes.items() if e.provider == "AMR"}
    assert report[STATS]["overdue"] is False
    assert report[STATS]["last_record"] is not None
    assert report[STATS]["age_seconds"] < 120
    # Nothing of the real-time class was ever published: overdue, no last record.
    assert report[ENTERPRISE]["overdue"] is True
    assert report[ENTERPRISE]["last_record"] is None

    # Garbage on its topic (the router dead-letters it) does not make it fresh.
    producer = bus.access.producer({"linger.ms": 5})
    producer.produce(bus.topics.source(ENTERPRISE), key=b"junk", value=b"not avro")
    assert producer.flush(30) == 0
    assert cli(["freshness", "--provider", "AMR", "--json"]) == 0
    report = {item["data_class"]: item for item in json.loads(capsys.readouterr().out)}
    assert (report[ENTERPRISE]["overdue"], report[ENTERPRISE]["last_record"]) == (True, None)
    assert report[STATS]["overdue"] is False

    assert cli(["freshness", "--overdue"]) == 0
    table = capsys.readouterr().out
    assert ENTERPRISE in table
    assert STATS not in table
    assert "OVERDUE" in table


def test_seeding_reads_past_a_newest_record_that_is_not_avro(bus: Bus) -> None:
    """On the broker: the newest records of each partition are read, and the newest one that passes seeds."""
    source = bus.topics.source(STATS)
    publish_stats(bus, 1)
    producer = bus.access.producer({"linger.ms": 5})
    junk_at = int(dt.datetime.now(dt.UTC).timestamp() * 1000) + 5_000
    producer.produce(source, key=b"junk", value=b"not avro", timestamp=junk_at)
    assert producer.flush(30) == 0
    tail = eventually(lambda: newest_records(bus.access, source), lambda found: len(found) == 2)
    [good] = [msg for msg in tail if msg.value() != b"not avro"]

    async def framed(_topic: str, value: bytes | None) -> bool:
        # The wire check alone (the router's also asks the registry, see test_freshness_seed.py).
        try:
            unframe(value)
        except WireFormatError:
            return False
        return True

    tracker = FreshnessTracker(bus.catalogue, time.time, FreshnessPolicy())
    asyncio.run(tracker.seed_from_log(bus.access, {source: STATS}, framed))
    assert tracker.last[STATS] == good.timestamp()[1] / 1000 < junk_at / 1000
