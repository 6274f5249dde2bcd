"""Freshness is seeded only from a record the router would route, not from the topic's newest bytes.

A topic's newest timestamp used to seed its class's "last seen" whatever that record was, so a class whose
provider sent only garbage lately (dead-lettered every time) looked fresh after a restart, and again after
each refresh.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from confluent_kafka import Message

from sharebus_core.catalogue import load_catalogue
from sharebus_core.topic_reader import TopicReadError
from sharebus_router import freshness
from sharebus_router.freshness import FreshnessTracker, Valid, decodes
from sharebus_rules.freshness import FreshnessPolicy
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness

STATS = "301001004/000001"  # daily
SOURCE = TOPICS.source(STATS)
DAY = 86400.0


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


def record(value: bytes | None, stamp: float, offset: int) -> Message:
    return Message(topic=SOURCE, partition=0, offset=offset, value=value, timestamp=(1, int(stamp * 1000)))


def seeded(harness: Harness, tail: list[Message], valid: Valid | None = None) -> tuple[FreshnessTracker, list[str]]:
    """A tracker seeded from ``tail`` (the topic's newest records); returns it and the topics read."""
    tracker = FreshnessTracker(harness.catalogue, lambda: harness.now, FreshnessPolicy())
    read: list[str] = []

    async def newest(topic: str) -> list[Message]:
        read.append(topic)
        return tail

    stamps = {SOURCE: max(msg.timestamp()[1] for msg in tail) / 1000}
    asyncio.run(tracker.seed_checked(stamps, {SOURCE: STATS}, valid or decodes(harness.handler), newest))
    return tracker, read


def good(harness: Harness, seq: int) -> bytes:
    return harness.encode(STATS, {"district_code": "500103", "issued": seq, "seq": seq})


def overdue(tracker: FreshnessTracker) -> bool:
    [item] = [item for item in tracker.report() if item.data_class == STATS]
    return item.overdue


def test_a_newest_record_that_would_be_dead_lettered_does_not_make_a_stale_class_fresh(harness: Harness) -> None:
    old = harness.now - 3 * DAY
    tail = [
        record(good(harness, 1), old, 0),
        record(b"not avro at all", harness.now - 60, 1),  # not_wire_format
        record(harness.encode(STATS, {"district_code": "1", "issued": 2, "seq": 2}, schema_id=99), harness.now, 2),
    ]
    tracker, _read = seeded(harness, tail)
    assert tracker.last[STATS] == pytest.approx(old, abs=0.001)
    assert overdue(tracker)


def test_the_newest_valid_record_seeds_its_class(harness: Harness) -> None:
    recent = harness.now - 600
    tracker, _read = seeded(
        harness, [record(good(harness, 1), harness.now - DAY, 0), record(good(harness, 2), recent, 1)]
    )
    assert tracker.last[STATS] == pytest.approx(recent, abs=0.001)
    assert not overdue(tracker)


def test_a_topic_of_garbage_only_seeds_nothing(harness: Harness) -> None:
    tracker, _read = seeded(harness, [record(b"junk", harness.now - 5, 0)])
    assert STATS not in tracker.last


def test_a_topic_is_read_again_only_when_its_newest_timestamp_moves(harness: Harness) -> None:
    tracker = FreshnessTracker(harness.catalogue, lambda: harness.now, FreshnessPolicy())
    read: list[str] = []
    tail = [record(b"junk", harness.now - 5, 0)]

    async def newest(topic: str) -> list[Message]:
        read.append(topic)
        return tail

    valid = decodes(harness.handler)
    for stamp in (harness.now - 5, harness.now - 5, harness.now - 1):
        asyncio.run(tracker.seed_checked({SOURCE: stamp}, {SOURCE: STATS}, valid, newest))
    assert read == [SOURCE, SOURCE]


def test_a_check_that_cannot_be_made_is_an_error_not_a_bad_record(harness: Harness) -> None:
    async def registry_down(topic: str, value: bytes | None) -> bool:
        raise TopicReadError("the registry does not answer")

    with pytest.raises(TopicReadError):
        seeded(harness, [record(good(harness, 1), harness.now - 5, 0)], registry_down)


def test_a_record_from_the_future_does_not_seed(harness: Harness) -> None:
    future = harness.now + dt.timedelta(days=2).total_seconds()
    tracker, _read = seeded(
        harness, [record(good(harness, 1), harness.now - 3 * DAY, 0), record(good(harness, 2), future, 1)]
    )
    assert tracker.last[STATS] == pytest.approx(harness.now - 3 * DAY, abs=0.001)


def test_a_class_routed_while_its_tail_is_read_is_skipped_without_failing_the_seed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data path moves ``last`` (the handler's last_seen) while the tails are read in an executor."""
    tracker = FreshnessTracker(harness.catalogue, lambda: harness.now, FreshnessPolicy())
    stamp = harness.now - 60
    spans: list[int] = []

    def tails(_access: object, topics: list[str], span: int) -> dict[str, list[Message]]:
        spans.append(span)
        tracker.last[STATS] = harness.now  # a newer record of the class was routed meanwhile
        return {SOURCE: [record(b"junk", stamp, 0)]}

    monkeypatch.setattr(freshness, "last_record_times", lambda _access, topics: {SOURCE: stamp})
    monkeypatch.setattr(freshness, "partition_tails", tails)
    asyncio.run(tracker.seed_from_log(None, {SOURCE: STATS}, decodes(harness.handler)))  # type: ignore[arg-type]
    assert spans == [freshness.FIRST_SPAN]
    assert tracker.last[STATS] == harness.now


def test_records_met_before_the_routes_are_built_are_not_kept_as_invalid(harness: Harness) -> None:
    harness.handler.routes = {}
    with pytest.raises(TopicReadError, match="no route"):
        seeded(harness, [record(good(harness, 1), harness.now - 60, 0)])
