"""Samples lag on an interval in a thread, and exposes the latest sample when Prometheus scrapes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.topics import TopicNames
from sharebus_monitor.groups import GroupLabels
from sharebus_monitor.lag import GrowthTracker, LagSample, Partition, lag_by_topic
from sharebus_monitor.offsets import OffsetReader, OffsetsUnavailable

log = logging.getLogger("sharebus.monitor")


class LagSampler:
    """One sample: the router's group over every source topic, the auditor's over the facts topic
    (its lag is audit not yet chained), and the systems' groups (``<ns>.<system>.*``) over the delivery
    topics they have committed on: each system's ``sub`` and ``land`` groups under their own label, its
    other groups folded into one (``groups.GroupLabels``) whose lag is the largest of theirs."""

    def __init__(
        self,
        reader: OffsetReader,
        topics: TopicNames,
        source_topics: Sequence[str],
        growth: GrowthTracker,
        labels: GroupLabels | None = None,
    ) -> None:
        self.reader = reader
        self.topics = topics
        self.source_topics = list(source_topics)
        self.growth = growth
        self.labels = labels or GroupLabels(topics)
        self.delivery_prefix = topics.delivery("")

    def sample(self, now: float) -> list[LagSample]:
        label = self.labels.select(self.reader.groups()).label
        committed = self.reader.committed(label)
        wanted: dict[str, set[str]] = {}
        for group, offsets in committed.items():
            if group == self.topics.router_app_id:
                wanted[group] = set(self.source_topics)
            elif group == self.topics.auditor_app_id:
                wanted[group] = {self.topics.audit_facts}
            else:
                wanted[group] = {topic for topic, _ in offsets if topic.startswith(self.delivery_prefix)}
        partitions = self.reader.partitions(set().union(*wanted.values()) if wanted else set())
        latest = self.reader.watermarks(partitions, latest=True)
        earliest = self.reader.watermarks(partitions, latest=False)
        # A folded label's lag is the largest of its groups' (the consumer furthest behind).
        lags: dict[tuple[str, str], int] = {}
        # A topic whose lag is unknown for one sample keeps its growth window: an error is not a drain.
        kept: set[tuple[str, str]] = set()
        for group, group_topics in sorted(wanted.items()):
            mine: dict[Partition, int] = {p: end for p, end in latest.items() if p[0] in group_topics}
            lag, unknown = lag_by_topic(committed[group], earliest, mine)
            for topic, records in lag.items():
                key = (label[group], topic)
                lags[key] = max(records, lags.get(key, 0))
            kept.update((label[group], topic) for topic in unknown)
        samples = [
            LagSample(g, t, records, self.growth.observe((g, t), now, records))
            for (g, t), records in sorted(lags.items())
        ]
        kept.update(lags)
        # A group still listed whose offsets Kafka did not give this time (OffsetReader.committed leaves it
        # out) keeps its windows too: otherwise intermittent errors would keep "growing" from ever firing.
        self.growth.forget_all_but(kept, {label[g] for g in label if g not in committed})
        return samples


class LagCollector(Collector):
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.samples: list[LagSample] = []
        self.errors = Counter(
            "sharebus_monitor_lag_errors", "Lag samples that failed (Kafka unreachable)", registry=registry
        )
        self.last_success = Gauge(
            "sharebus_monitor_lag_last_success_timestamp_seconds",
            "When lag was last sampled successfully",
            registry=registry,
        )
        self.duration = Gauge(
            "sharebus_monitor_lag_sample_duration_seconds", "How long the last lag sample took", registry=registry
        )
        registry.register(self)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        samples = self.samples  # replaced whole by the sampler thread, never mutated
        lag = GaugeMetricFamily(
            "sharebus_consumer_lag_records",
            "Records behind the high-water mark: committed offsets against end offsets, summed over partitions",
            labels=["group", "topic"],
        )
        growing = GaugeMetricFamily(
            "sharebus_consumer_lag_growing",
            "1 when the lag only rose over the growth window (the consumer falls further behind), else 0",
            labels=["group", "topic"],
        )
        for sample in samples:
            lag.add_metric([sample.group, sample.topic], sample.records)
            growing.add_metric([sample.group, sample.topic], 1 if sample.growing else 0)
        yield lag
        yield growing


def run_sampler(
    sampler: LagSampler,
    collector: LagCollector,
    interval_s: float,
    stop: threading.Event,
    clock: Callable[[], float] = time.time,
) -> None:
    """Samples until ``stop``. When Kafka cannot be read the lag series are withdrawn: no data is
    better than stale data that looks current (the error counter and last-success time say why)."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            collector.samples = sampler.sample(clock())
            collector.last_success.set(clock())
        except OffsetsUnavailable as exc:
            log.warning("lag not sampled: %s", exc)
            collector.errors.inc()
            collector.samples = []
        collector.duration.set(time.monotonic() - started)
        stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
