"""Lag arithmetic and the growing judgement, without Kafka."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import pytest
from confluent_kafka import KafkaError, KafkaException

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_monitor.collector import LagSampler
from sharebus_monitor.lag import GrowthTracker, Partition, lag_by_topic
from sharebus_monitor.offsets import OffsetReader, OffsetsUnavailable


def test_lag_sums_partitions_per_topic_against_committed_offsets() -> None:
    latest = {("a", 0): 10, ("a", 1): 7, ("b", 0): 3}
    committed = {("a", 0): 4, ("a", 1): 7, ("b", 0): 1}
    assert lag_by_topic(committed, {}, latest) == ({"a": 6, "b": 2}, set())


def test_partition_without_a_commit_counts_from_its_earliest_offset() -> None:
    latest = {("a", 0): 10, ("a", 1): 8}
    earliest = {("a", 0): 0, ("a", 1): 5}
    # -1001 is Kafka's "no committed offset"; partition 1 is absent altogether.
    assert lag_by_topic({("a", 0): -1001}, earliest, latest) == ({"a": 10 + 3}, set())


def test_a_partition_whose_commit_kafka_could_not_read_leaves_its_topic_out() -> None:
    latest = {("a", 0): 10, ("a", 1): 8, ("b", 0): 4}
    # Not the earliest offset's guess of 10 + 8: the lag of "a" is unknown this round.
    assert lag_by_topic({("a", 0): None, ("a", 1): 6, ("b", 0): 1}, {}, latest) == ({"b": 3}, {"a"})


def test_committed_past_the_end_never_gives_negative_lag() -> None:
    assert lag_by_topic({("a", 0): 12}, {}, {("a", 0): 10}) == ({"a": 0}, set())


def test_lag_that_only_rises_over_a_full_window_is_growing() -> None:
    tracker = GrowthTracker(window_s=60)
    key = ("g", "t")
    verdicts = [tracker.observe(key, float(t), lag) for t, lag in [(0, 5), (20, 9), (40, 9), (60, 14)]]
    assert verdicts == [False, False, False, True]


def test_lag_that_drains_back_within_the_window_is_not_growing() -> None:
    tracker = GrowthTracker(window_s=60)
    key = ("g", "t")
    for t, lag in [(0, 5), (20, 3), (40, 9)]:
        tracker.observe(key, float(t), lag)
    assert tracker.observe(key, 60.0, 12) is False
    # Once the dip falls out of the window, the baseline is the sample at the window's start.
    assert tracker.observe(key, 85.0, 15) is True


def test_steady_lag_is_not_growing_and_gone_keys_are_forgotten() -> None:
    tracker = GrowthTracker(window_s=10)
    for t in range(0, 30, 5):
        assert tracker.observe(("g", "t"), float(t), 4) is False
    tracker.forget_all_but(set())
    # A fresh history: no full window yet, so no verdict of growth.
    assert tracker.observe(("g", "t"), 30.0, 100) is False


class FakeOffsets:
    """Stands in for OffsetReader: the groups, commits and watermarks a broker would report."""

    def __init__(self) -> None:
        self.listed = ["ns-router", "ns-auditor", "ns.tax-levy.sub", "other.sub.x", "probe-1"]
        self.commits: dict[str, dict[Partition, int | None]] = {
            "ns-router": {("ns.src.a", 0): 5},
            "ns-auditor": {("ns.audit.facts", 0): 40},
            "ns.tax-levy.sub": {("ns.dlv.tax-levy", 0): 2, ("ns.grants", 0): 1},
        }
        self.ends = {
            ("ns.audit.facts", 0): 100,
            ("ns.src.a", 0): 9,
            ("ns.src.a", 1): 4,
            ("ns.src.b", 0): 0,
            ("ns.dlv.tax-levy", 0): 3,
        }
        self.starts = {("ns.src.a", 1): 1}

    def groups(self) -> dict[str, bool]:
        return dict.fromkeys(self.listed, False)

    def committed(self, groups: Iterable[str]) -> dict[str, dict[Partition, int | None]]:
        return {g: self.commits.get(g, {}) for g in groups}

    def partitions(self, topics: Iterable[str]) -> list[Partition]:
        wanted = set(topics)
        return [p for p in self.ends if p[0] in wanted]

    def watermarks(self, partitions: Iterable[Partition], latest: bool) -> dict[Partition, int]:
        source = self.ends if latest else self.starts
        return {p: source.get(p, 0) for p in partitions}


def test_sampler_reports_the_router_over_sources_and_subscribers_over_their_delivery_topics() -> None:
    reader = FakeOffsets()
    sampler = LagSampler(cast(OffsetReader, reader), TopicNames("ns"), ["ns.src.a", "ns.src.b"], GrowthTracker(60))
    samples = {(s.group, s.topic): s.records for s in sampler.sample(now=0.0)}
    # Router: partition 0 committed at 5 of 9; partition 1 never committed, 3 retained records (1..4).
    assert samples == {
        ("ns-router", "ns.src.a"): 4 + 3,
        ("ns-router", "ns.src.b"): 0,
        ("ns.tax-levy.sub", "ns.dlv.tax-levy"): 1,
        # The auditor: facts not yet chained.
        ("ns-auditor", "ns.audit.facts"): 60,
    }
    reader.commits["ns-router"][("ns.src.a", 1)] = None  # Kafka answered this partition with an error
    samples = {(s.group, s.topic): s.records for s in sampler.sample(now=15.0)}
    assert ("ns-router", "ns.src.a") not in samples
    assert samples[("ns-router", "ns.src.b")] == 0
    # Known again, and higher than a full window ago: growing, as the unknown sample kept the window.
    reader.commits["ns-router"][("ns.src.a", 1)] = 1
    reader.ends[("ns.src.a", 0)] = 30
    growing = {(s.group, s.topic): s.growing for s in sampler.sample(now=61.0)}
    assert growing[("ns-router", "ns.src.a")] is True


def test_a_group_whose_offsets_kafka_could_not_read_keeps_its_growth_window() -> None:
    """As for one partition's error: a group's failed offsets request is no drain, so a consumer falling
    behind through intermittent errors is still reported growing once its offsets read again."""
    reader = FakeOffsets()
    sampler = LagSampler(cast(OffsetReader, reader), TopicNames("ns"), ["ns.src.a", "ns.src.b"], GrowthTracker(60))
    sampler.sample(now=0.0)
    answered = reader.committed
    reader.committed = lambda groups: {g: o for g, o in answered(groups).items() if g != "ns.tax-levy.sub"}  # type: ignore[method-assign]
    assert ("ns.tax-levy.sub", "ns.dlv.tax-levy") not in {(s.group, s.topic) for s in sampler.sample(now=30.0)}
    reader.committed = answered  # type: ignore[method-assign]
    reader.ends[("ns.dlv.tax-levy", 0)] = 50
    growing = {(s.group, s.topic): s.growing for s in sampler.sample(now=61.0)}
    assert growing[("ns.tax-levy.sub", "ns.dlv.tax-levy")] is True


class _Admin:
    def __init__(self, error: int) -> None:
        self.error = error

    def list_topics(self, timeout: float) -> object:
        raise KafkaException(KafkaError(self.error))


class _Access:
    """Hands out a new admin client, failing with ``error``, each time one is asked for."""

    def __init__(self, error: int) -> None:
        self.error = error
        self.made: list[_Admin] = []

    def admin(self) -> _Admin:
        self.made.append(_Admin(self.error))
        return self.made[-1]


def test_an_admin_client_is_replaced_after_a_timeout_only() -> None:
    access = _Access(KafkaError._TRANSPORT)
    reader = OffsetReader(cast(KafkaAccess, access), timeout_s=1.0)
    with pytest.raises(OffsetsUnavailable, match="cannot list topics"):
        reader.topics()
    admin: object = reader.admin
    assert access.made == [admin]  # a broker down: the client reconnects by itself
    access.made[0].error = KafkaError._TIMED_OUT
    with pytest.raises(OffsetsUnavailable):
        reader.topics()
    # A timed-out admin request can abort the process later (librdkafka#4605): a fresh client.
    assert len(access.made) == 2
    assert id(reader.admin) == id(access.made[1])
