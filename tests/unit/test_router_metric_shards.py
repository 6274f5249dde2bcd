"""The router's own collectors in parts: together exactly one whole scrape, each class in one part."""

from __future__ import annotations

import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from sharebus_core.catalogue import load_catalogue
from sharebus_core.exposition import scrape
from sharebus_router.freshness import FreshnessTracker
from sharebus_router.quality_gate import QualityCounters, QualityGate, QualityScores
from sharebus_rules.freshness import FreshnessPolicy
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import Harness

NOW = 1_790_000_000.0


def _samples(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted(
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )


def test_the_router_collectors_split_into_parts_that_add_up_to_the_whole() -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    harness = Harness(catalogue)
    registry = harness.registry
    freshness = FreshnessTracker(catalogue, lambda: NOW, FreshnessPolicy())
    gate = QualityGate(catalogue, lambda: dt.datetime.fromtimestamp(NOW, dt.UTC))
    registry.register(freshness)
    registry.register(QualityCounters(gate))
    registry.register(QualityScores(catalogue, gate, freshness, dt.timedelta(days=1)))
    codes = sorted(catalogue.data_classes)
    for n, code in enumerate(codes):
        if n % 2:
            freshness.last[code] = NOW - 60 * n
        gate.counts[code].results["passed"] += n + 1
    for pair in [(catalogue.data_class(code).provider, "some-system", code) for code in codes[:3]]:
        harness.metrics.backfill_records.add(*pair, 5)

    whole = _samples(scrape(registry, "").body.decode())
    parts = [_samples(scrape(registry, f"shard={k}&shards=3").body.decode()) for k in range(3)]
    assert sorted(sample for part in parts for sample in part) == whole
    per_class = {"sharebus_freshness_age_seconds", "sharebus_quality_delivery", "sharebus_quality_records_total"}
    for name in per_class:
        owners = {dict(labels)["data_class"]: k for k, part in enumerate(parts) for n, labels, _ in part if n == name}
        assert sorted(owners) == codes, name
        assert len(set(owners.values())) > 1, f"{name}: every class in one part"
    ratios = [sum(s[0] == "sharebus_quality_delivery_ratio" for s in part) for part in parts]
    assert ratios == [len({catalogue.data_class(code).provider for code in codes}), 0, 0]
