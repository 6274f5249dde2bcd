"""The monitor's ``group`` label is bounded by the catalogue, whatever groups a system creates under its prefix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from prometheus_client import CollectorRegistry

from sharebus_core.topics import TopicNames
from sharebus_monitor.collector import LagCollector, LagSampler
from sharebus_monitor.groups import GroupLabels
from sharebus_monitor.lag import GrowthTracker, Partition
from sharebus_monitor.offsets import OffsetReader

DELIVERY = "ns.dlv.tax-levy"


class Broker:
    """Stands in for OffsetReader: the router, tax-levy's subscriber and landing groups, and ``runs`` groups of
    tax-levy's own (a fresh group id per run, the usual client habit), ``idle`` of them without members."""

    def __init__(self, runs: int, idle: int = 0) -> None:
        self.listing = {"ns-router": False, "ns.tax-levy.sub": True, "ns.tax-levy.land": False}
        self.listing.update({f"ns.tax-levy.run-{i:05d}": i < idle for i in range(runs)})
        self.positions: dict[str, int] = {"ns.tax-levy.sub": 8, "ns.tax-levy.land": 9}
        self.asked: list[str] = []
        self.end = 10

    def groups(self) -> dict[str, bool]:
        return self.listing

    def committed(self, groups: Iterable[str]) -> dict[str, dict[Partition, int | None]]:
        self.asked = list(groups)
        return {
            g: {("ns.src.a", 0): 1} if g == "ns-router" else {(DELIVERY, 0): self.positions.get(g, 1)}
            for g in self.asked
        }

    def partitions(self, topics: Iterable[str]) -> list[Partition]:
        return [(t, 0) for t in topics]

    def watermarks(self, partitions: Iterable[Partition], latest: bool) -> dict[Partition, int]:
        return {p: (self.end if latest else 0) for p in partitions}


def sampler(broker: Broker, max_folded: int = 16) -> LagSampler:
    topics = TopicNames("ns")
    return LagSampler(
        cast(OffsetReader, broker), topics, ["ns.src.a"], GrowthTracker(60), GroupLabels(topics, max_folded)
    )


def test_one_system_cannot_multiply_the_monitors_series() -> None:
    """5,000 groups of one system were 5,000 lag series and as many offsets requests every 15 s."""
    registry = CollectorRegistry()
    collector = LagCollector(registry)
    broker = Broker(runs=5000)
    collector.samples = sampler(broker).sample(now=0.0)
    series = {
        s.labels["group"]: s.value
        for m in registry.collect()
        if m.name == "sharebus_consumer_lag_records"
        for s in m.samples
    }
    # The bus's own groups keep their label; the system's others are one series, the largest lag of theirs.
    assert series == {"ns-router": 9, "ns.tax-levy.sub": 2, "ns.tax-levy.land": 1, "ns.tax-levy.*": 9}
    assert len(broker.asked) == 3 + 16


def test_a_folded_label_reports_the_consumer_furthest_behind() -> None:
    broker = Broker(runs=3)
    broker.positions.update({"ns.tax-levy.run-00000": 7, "ns.tax-levy.run-00001": 2, "ns.tax-levy.run-00002": 10})
    lags = {(s.group, s.topic): s.records for s in sampler(broker).sample(now=0.0)}
    assert lags[("ns.tax-levy.*", DELIVERY)] == 8


def test_groups_without_members_are_read_only_when_the_bus_runs_them() -> None:
    """An abandoned run's group is not read (its lag is nobody's backlog); a stopped subscriber's default group
    still is: its backlog is what the growth alert is for."""
    broker = Broker(runs=4, idle=3)
    sampler(broker).sample(now=0.0)
    assert sorted(broker.asked) == ["ns-router", "ns.tax-levy.land", "ns.tax-levy.run-00003", "ns.tax-levy.sub"]


def test_an_abandoned_groups_growth_ends_with_its_members() -> None:
    """A run whose group kept growing stops being reported once it has no members: the alert resolves."""
    broker = Broker(runs=1)
    lag = sampler(broker)
    for t in range(0, 75, 15):
        broker.end += 5
        growing = {(s.group, s.topic): s.growing for s in lag.sample(now=float(t))}
    assert growing[("ns.tax-levy.*", DELIVERY)] is True
    broker.listing["ns.tax-levy.run-00000"] = True
    assert ("ns.tax-levy.*", DELIVERY) not in {(s.group, s.topic) for s in lag.sample(now=75.0)}


def test_labels_of_the_bus_groups_and_of_the_rest() -> None:
    labels = GroupLabels(TopicNames("ns"))
    assert labels.label("ns-router") == "ns-router"
    assert labels.label("ns-auditor") == "ns-auditor"
    assert labels.label("ns.tax-levy.sub") == "ns.tax-levy.sub"
    assert labels.label("ns.tax-levy.land") == "ns.tax-levy.land"
    assert labels.label("ns.tax-levy.sub.2") == "ns.tax-levy.*"
    assert labels.label("ns.tax-levy.reader-1a2b3c4d") == "ns.tax-levy.*"
    # Another namespace's groups and the services' private readers are not this monitor's.
    assert labels.label("other.tax-levy.sub") is None
    assert labels.label("ns-gateway.feed-1a2b3c4d") is None
