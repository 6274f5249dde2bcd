"""Freshness of every data class as gauges, computed when Prometheus scrapes.

The hot path only stores the router-clock time of each class's latest record in ``last``; ages
and overdue flags are derived at scrape time (``sharebus_rules.freshness.assess``). At start the
times are seeded from the source topics' newest records, so a restart does not make every class
look fresh or unknown.

With several router workers each routes only its own partitions, so one worker speaks for the
freshness of every class: the one that owns the backfill topic's only partition (``active``). It
re-reads the newest record of every source topic every ``refresh`` seconds, besides what it routes.
The others export no freshness samples, so no class has two contradictory ages. Whether a periodic
class's last window held records is exported by the worker that released it (``releases``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.catalogue import Catalogue
from sharebus_core.exposition import WHOLE, Shard
from sharebus_rules.freshness import Freshness, FreshnessPolicy, assess, credible


class FreshnessTracker(Collector):
    def __init__(self, catalogue: Catalogue, clock: Callable[[], float], policy: FreshnessPolicy) -> None:
        self.catalogue = catalogue
        self.clock = clock
        self.policy = policy
        self.started = clock()
        # class code -> epoch seconds (router clock) of its latest record. Written per record.
        self.last: dict[str, float] = {}
        # Periodic classes: whether the latest released window held any record.
        self.window_delivered: dict[str, bool] = {}
        # Several workers: whether this one exports the freshness gauges, and the classes it releases.
        self.active: Callable[[], bool] = lambda: True
        self.releases: Callable[[str], bool] = lambda code: True

    def seed(self, last_times: Mapping[str, float]) -> None:
        """Takes the source topics' newest record times (their producers' clocks), those not in the future
        of the router's clock (``credible``)."""
        now = self.clock()
        for code, stamp in last_times.items():
            seen = credible(stamp, now)
            if seen is not None and seen > self.last.get(code, 0.0):
                self.last[code] = seen

    def report(self, shard: Shard = WHOLE) -> list[Freshness]:
        """Every class's freshness now (the classes of ``shard`` only, for a scrape in parts)."""
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        since = dt.datetime.fromtimestamp(self.started, dt.UTC)
        report = []
        for code, entry in self.catalogue.data_classes.items():
            if not shard.holds_value(code):
                continue
            seen = self.last.get(code)
            last = dt.datetime.fromtimestamp(seen, dt.UTC) if seen is not None else None
            report.append(assess(entry, last, since, now, self.policy))
        return report

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self.collect_shard(WHOLE)

    def collect_shard(self, shard: Shard) -> Iterator[GaugeMetricFamily]:
        labels = ["provider", "data_class", "mode"]
        last = GaugeMetricFamily(
            "sharebus_freshness_last_record_timestamp_seconds",
            "When the router received the class's latest record (Unix time; absent when never seen)",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "sharebus_freshness_age_seconds",
            "Age of the class's latest record (since the router began watching, when never seen)",
            labels=labels,
        )
        overdue = GaugeMetricFamily(
            "sharebus_freshness_overdue",
            "1 when the data is older than its period plus the grace (real-time: the allowed silence)",
            labels=labels,
        )
        delivered = GaugeMetricFamily(
            "sharebus_freshness_window_delivered",
            "Periodic classes: 1 when the latest released window held records, 0 when it was empty",
            labels=labels,
        )
        active = self.active()
        for item in self.report(shard):
            values = [item.provider, item.data_class, item.mode]
            if item.data_class in self.window_delivered and self.releases(item.data_class):
                delivered.add_metric(values, 1.0 if self.window_delivered[item.data_class] else 0.0)
            if not active:
                continue
            if item.last_record is not None:
                last.add_metric(values, item.last_record.timestamp())
            age.add_metric(values, item.age.total_seconds())
            overdue.add_metric(values, 1.0 if item.overdue else 0.0)
        yield last
        yield age
        yield overdue
        yield delivered
