"""The router's Prometheus counters. Label children are cached: ``labels()`` is too slow per record."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from sharebus_core.exposition import WHOLE, Shard
from sharebus_router.dead_letters import DeadLetterReason

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Tally:
    """Counter increments and histogram observations gathered over a batch, added once per child at its end.

    A pre-bound child's ``inc()`` takes a lock (~0.5 µs), and a histogram's ``observe()`` two locks and
    a walk of its buckets (~3 µs); appending to a list or a dict is a fraction of that. The exported
    series are the same; they are only behind by the batch in flight.
    """

    def __init__(self) -> None:
        self._counts: dict[Any, int] = {}
        self._observed: list[tuple[Any, float]] = []

    def add(self, child: Any) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0) + 1

    def observe(self, child: Any, amount: float) -> None:
        """An observation of a histogram child (``observe(amount)`` at the flush, in bulk)."""
        self._observed.append((child, amount))

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        for child, n in counts.items():
            child.inc(n)
        observed, self._observed = self._observed, []
        if observed:
            observe_in_bulk(observed)


def observe_in_bulk(observed: list[tuple[Any, float]]) -> None:
    """What ``Histogram.observe`` does per amount, done once per child and bucket.

    prometheus_client has no bulk observe: this adds to the child's sum and (non-cumulative) bucket
    values as its ``observe`` does, a bucket being the first whose upper bound is at least the amount
    (tests/unit/test_router_metrics_tally.py checks the exposition is the same as ``observe``'s).
    """
    sums: dict[Any, float] = {}
    buckets: dict[tuple[Any, int], int] = {}
    for child, amount in observed:
        sums[child] = sums.get(child, 0.0) + amount
        if amount != amount:
            continue  # NaN: in the sum and in no bucket, as observe() leaves it
        key = (child, bisect_left(child._upper_bounds, amount))
        buckets[key] = buckets.get(key, 0) + 1
    for child, total in sums.items():
        child._sum.inc(total)
    for (child, index), n in buckets.items():
        child._buckets[index].inc(n)  # the last bound is +Inf: every number has a bucket


class LazyChild:
    """A counter child made at its first increment, for counts of rare events bound per target.

    Binding them eagerly gave every worker one series per subscription at 0 (6,847 at city scale) for
    events most targets never see. The cost: ``increase()`` over the window holding a series' first
    event misses that event; the audit trail holds each one exactly.
    """

    __slots__ = ("_child", "_labels", "_metric")

    def __init__(self, metric: MetricWrapperBase, *labels: str) -> None:
        self._metric = metric
        self._labels = labels
        self._child: Any = None

    def inc(self, amount: float = 1) -> None:
        if self._child is None:
            self._child = self._metric.labels(*self._labels)
        self._child.inc(amount)


# (provider, consumer, data class): one backfill flow.
Flow = tuple[str, str, str]


class BackfillCounts(Collector):
    """``sharebus_backfill_records_total`` per (provider, consumer, data class).

    The worker that serves backfills (``serving``) exports every entitled flow, at 0 until its first
    backfill, so a dashboard's ``increase()`` sees the first one. The others export only what they
    replayed while they served: one worker's zeros, not every worker's.
    """

    def __init__(self) -> None:
        self.counts: dict[Flow, int] = {}
        self.serving: Callable[[], bool] = lambda: True
        self.entitled: Callable[[], Iterable[Flow]] = lambda: ()

    def add(self, provider: str, consumer: str, data_class: str, records: int) -> None:
        key = (provider, consumer, data_class)
        self.counts[key] = self.counts.get(key, 0) + records

    def collect(self) -> Iterator[CounterMetricFamily]:
        return self.collect_shard(WHOLE)

    def collect_shard(self, shard: Shard) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "sharebus_backfill_records",
            "Records replayed from retained history to a new subscriber",
            labels=["provider", "consumer", "data_class"],
        )
        values = dict(self.counts)
        if self.serving():
            for flow in self.entitled():
                values.setdefault(flow, 0)
        for flow, count in sorted(values.items()):
            if shard.holds_value(flow[2]):
                family.add_metric(list(flow), count)
        yield family


class RouterMetrics:
    """Calls and records per provider x consumer x data class x share type x mode; denials, dead letters,
    latency, released batches and backfills.

    For real-time shares one call is one record delivered to one consumer; for periodic shares one
    call is one batch delivered to one consumer (its records count in ``sharebus_records_total``).
    Backfilled records are counted only in ``sharebus_backfill_records_total``.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        share = ["provider", "consumer", "data_class", "share_type", "mode"]
        self.calls = Counter("sharebus_calls", "Deliveries (calls) to a consumer", share, registry=registry)
        self.records = Counter("sharebus_records", "Records delivered to a consumer", share, registry=registry)
        self.denials = Counter(
            "sharebus_denials",
            "Records a subscriber did not receive, by reason",
            ["provider", "consumer", "data_class", "reason"],
            registry=registry,
        )
        self.received = Counter(
            "sharebus_records_received",
            "Records read from source topics",
            ["provider", "data_class", "mode"],
            registry=registry,
        )
        # Bounded: direction x the city catalogue's district codes; none at all on a bus without districts.
        self.cross_level = Counter(
            "sharebus_cross_level_records",
            "Records delivered across levels: up from a district's class, down to a district's system",
            ["direction", "district"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "sharebus_dead_letters",
            "Records sent to the dead-letter topic, by reason",
            ["data_class", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "sharebus_publish_to_route_seconds",
            "From the publisher's send to the router's forward",
            ["mode"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batches = Counter(
            "sharebus_batches_released",
            "Periodic windows released; outcome 'empty' when the provider sent nothing in the window",
            ["provider", "data_class", "outcome"],
            registry=registry,
        )
        self.backfill_records = BackfillCounts()
        registry.register(self.backfill_records)
        self._fail_closed(registry)
        self._data_path(registry)
        self._dead_letter_children: dict[tuple[str, str], MetricWrapperBase] = {}

    def _fail_closed(self, registry: CollectorRegistry) -> None:
        # Failing closed is visible: a class denied because its routes could not be built, grants
        # closed because their latest signed event could not be read, a background thread down.
        self.routes_closed = Gauge(
            "sharebus_routes_closed",
            "1 while a class's routes cannot be built and every consumer of it is denied (reason routes_unavailable)",
            ["provider", "data_class"],
            registry=registry,
        )
        self.route_build_failures = Counter(
            "sharebus_route_build_failures",
            "Attempts to build a class's routes that failed",
            ["provider", "data_class"],
            registry=registry,
        )
        self.grants_closed = Gauge(
            "sharebus_grants_unreadable",
            "Grants closed (denied) because their latest signed event could not be read",
            registry=registry,
        )
        self.follower_up = Gauge(
            "sharebus_follower_up",
            "1 while a background log follower runs and has caught up; 0 while it is down or restarting",
            ["follower"],
            registry=registry,
        )

    def _data_path(self, registry: CollectorRegistry) -> None:
        # The data path (data_path.py): what Faust's sensor counted when Faust read the sources.
        self.consumed = Counter(
            "sharebus_router_consumed_records", "Records the data path read from the source topics", registry=registry
        )
        self.routed_batches = Counter(
            "sharebus_router_batches", "Batches of source records the data path routed", registry=registry
        )
        self.commit_seconds = Histogram(
            "sharebus_router_commit_seconds",
            "The data path's commits: from an epoch's cut until Kafka had acknowledged its messages and its offsets"
            " were sent",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_failures = Counter(
            "sharebus_router_commit_failures",
            "Commits not made (deliveries not yet acknowledged, or refused in a rebalance): those records are routed"
            " again",
            ["reason"],
            registry=registry,
        )
        self.rebalances = Counter(
            "sharebus_router_rebalances",
            "Source partitions assigned to, revoked from, or lost by this worker's data path",
            ["event"],
            registry=registry,
        )
        self.start_offset_failures = Counter(
            "sharebus_router_start_offset_failures",
            "Assignments whose start offsets could not be read in one batch: the consumer asked per partition",
            registry=registry,
        )
        self.source_partitions = Gauge(
            "sharebus_router_source_partitions", "Source partitions this worker's data path owns", registry=registry
        )
        for event in ("assigned", "revoked", "lost"):
            self.rebalances.labels(event)
        for reason in ("unacknowledged", "refused"):
            self.commit_failures.labels(reason)

    def dead_letter(self, data_class: str, reason: DeadLetterReason) -> None:
        key = (data_class, reason.value)
        child = self._dead_letter_children.get(key)
        if child is None:
            child = self._dead_letter_children[key] = self.dead_letters.labels(*key)
        child.inc()  # type: ignore[attr-defined]
