"""Which series a router worker exports before anything happens: the city's series budget (issue 13).

Counts of rare events per subscription (backfills, expiries) and per class (closed routes) were bound at
0 for every class in every worker: 6,847 series each at city scale, times the workers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sharebus_core.catalogue import load_catalogue
from sharebus_router.metrics import BackfillCounts, LazyChild, RouterMetrics
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import Harness


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_backfill_zeros_come_from_the_serving_worker_only() -> None:
    registry = CollectorRegistry()
    counts = BackfillCounts()
    registry.register(counts)
    entitled = [("AMR", "tax-levy", "c1"), ("AMR", "hrss-si", "c1")]
    counts.entitled = lambda: entitled
    zero = {tuple(sorted(zip(("provider", "consumer", "data_class"), pair, strict=True))): 0.0 for pair in entitled}
    assert _samples(registry, "sharebus_backfill_records_total") == zero

    # Ownership moved away: only what this worker replayed while it served stays.
    counts.add("AMR", "hrss-si", "c1", 7)
    counts.serving = lambda: False
    assert _samples(registry, "sharebus_backfill_records_total") == {
        (("consumer", "hrss-si"), ("data_class", "c1"), ("provider", "AMR")): 7.0
    }


def test_a_lazy_child_is_a_series_from_its_first_increment() -> None:
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry)
    child = LazyChild(metrics.denials, "AMR", "tax-levy", "c1", "grant_expired")
    assert _samples(registry, "sharebus_denials_total") == {}
    child.inc(2)
    child.inc()
    [(labels, value)] = _samples(registry, "sharebus_denials_total").items()
    assert (dict(labels)["reason"], value) == ("grant_expired", 3.0)


def test_built_routes_bind_no_series_for_rare_events() -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    targets = [t for route in harness.table.routes.values() for t in route.targets]
    assert targets
    registry = harness.registry
    assert _samples(registry, "sharebus_routes_closed") == {}
    assert not [k for k in _samples(registry, "sharebus_denials_total") if ("reason", "grant_expired") in k]
    # The route table names the entitled pairs; with one worker it serves backfills and shows them at 0.
    harness.metrics.backfill_records.entitled = harness.table.entitled
    backfills = _samples(registry, "sharebus_backfill_records_total")
    assert len(backfills) == len(targets)
    assert set(backfills.values()) == {0.0}
    # The series a delivery needs are still there from the start.
    assert len(_samples(registry, "sharebus_calls_total")) == len(targets)
