"""The router's batch-shaped metrics export exactly what per-record calls would have."""

from __future__ import annotations

import math
import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from sharebus_router.metrics import Tally

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def _histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("latency_seconds", "latency", ["mode"], buckets=BUCKETS, registry=registry)


def _amounts(seed: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    # Every bound itself (le is inclusive), just past each, zero, huge, and random spread.
    edges = [b for bound in BUCKETS for b in (bound, math.nextafter(bound, math.inf))]
    spread = [rng.expovariate(3.0) for _ in range(500)]
    return [(rng.choice(("realtime", "periodic")), a) for a in [0.0, 1e9, *edges, *spread]]


def _exposed(registry: CollectorRegistry) -> tuple[list[str], dict[str, float]]:
    """The exposition's lines but the ``_created`` times (the two registries were made apart), and its
    sums apart: added in another order, a float sum may differ in its last digit."""
    lines = [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]
    sums = {line.split(" ")[0]: float(line.split(" ")[1]) for line in lines if line.startswith("latency_seconds_sum")}
    return [line for line in lines if not line.startswith("latency_seconds_sum")], sums


def test_observations_flushed_in_bulk_export_what_observe_would() -> None:
    direct, batched = CollectorRegistry(), CollectorRegistry()
    by_observe, by_tally = _histogram(direct), _histogram(batched)
    tally = Tally()
    for i, (mode, amount) in enumerate(_amounts(7)):
        by_observe.labels(mode).observe(amount)
        tally.observe(by_tally.labels(mode), amount)
        if i % 97 == 0:
            tally.flush()  # flushes at any point add up to the same
    tally.flush()
    (lines, sums), (expected_lines, expected_sums) = _exposed(batched), _exposed(direct)
    assert lines == expected_lines
    assert sums.keys() == expected_sums.keys()
    assert all(math.isclose(sums[k], expected_sums[k], rel_tol=1e-12) for k in sums)


def test_nothing_is_exported_before_the_flush_and_nothing_twice_after() -> None:
    registry = CollectorRegistry()
    histogram = _histogram(registry)
    counter = Counter("records", "records", registry=registry)
    tally = Tally()
    tally.observe(histogram.labels("realtime"), 0.05)
    tally.add(counter)
    assert registry.get_sample_value("latency_seconds_count", {"mode": "realtime"}) == 0.0
    assert registry.get_sample_value("records_total") == 0.0
    tally.flush()
    tally.flush()
    assert registry.get_sample_value("latency_seconds_count", {"mode": "realtime"}) == 1.0
    assert registry.get_sample_value("latency_seconds_bucket", {"mode": "realtime", "le": "0.01"}) == 0.0
    assert registry.get_sample_value("latency_seconds_bucket", {"mode": "realtime", "le": "0.1"}) == 1.0
    assert registry.get_sample_value("latency_seconds_sum", {"mode": "realtime"}) == 0.05
    assert registry.get_sample_value("records_total") == 1.0
