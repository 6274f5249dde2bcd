"""The router's side of the quality rules: judge each decoded record, count it, expose the scores.

Per record (``QualityGate.judge``) the class's compiled rules (``sharebus_rules.quality``) give a
verdict: the failed rules, whether a failure rejects it, its declared fields filled. The handler acts
on it (dead letter, or the ``sharebus-quality`` header) and puts ``verdict.as_fact()`` into the
record's audit fact (docs/quality.md). Counting happens once per record read from a source topic
(``count``): a held record is counted when it is held, not again when its window is released.

``QualityScores`` turns the counters and the freshness tracker into the score gauges at scrape time.
Labels are (provider, data_class) and (provider, data_class, rule), all from the catalogue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import cast

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.catalogue import Catalogue
from sharebus_core.headers import QUALITY, HeaderList
from sharebus_router.dead_letters import BadRecord, DeadLetterReason
from sharebus_router.freshness import FreshnessTracker
from sharebus_rules.quality import ClassRules, KeyView, Verdict
from sharebus_rules.quality_scores import delivered, ratio, share


class QualityRejected(BadRecord):
    """A record whose failed rule rejects it; it carries the verdict for the audit fact."""

    def __init__(self, verdict: Verdict, detail: str, headers: HeaderList) -> None:
        super().__init__(DeadLetterReason.QUALITY, detail, verdict.rejected_by)
        self.verdict = verdict
        self.headers = headers


@dataclass
class _ClassCounts:
    records: int = 0
    passed: int = 0
    filled: int = 0
    fields: int = 0
    children: dict[str, object] = field(default_factory=dict)


class QualityGate:
    def __init__(
        self,
        catalogue: Catalogue,
        now: Callable[[], dt.datetime],
        views: Mapping[str, KeyView] | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.views = dict(views or {})
        self.rules: dict[str, ClassRules] = {
            code: ClassRules.compile(entry.quality, catalogue.schema(code).field_names, now, self.views)
            for code, entry in catalogue.data_classes.items()
        }
        self.provider = {code: entry.provider for code, entry in catalogue.data_classes.items()}
        self.counts: dict[str, _ClassCounts] = {code: _ClassCounts() for code in catalogue.data_classes}
        self.records = Counter(
            "sharebus_quality_records",
            "Records read from a source topic and checked against the class's quality rules, by result",
            ["provider", "data_class", "result"],
            registry=registry,
        )
        self.rule_failures = Counter(
            "sharebus_quality_rule_failures",
            "Records that failed one quality rule (rule is <field>:<kind>)",
            ["provider", "data_class", "rule"],
            registry=registry,
        )
        self.fields_declared = Counter(
            "sharebus_quality_fields_declared",
            "Declared fields (the class's schema fields) of the records read",
            ["provider", "data_class"],
            registry=registry,
        )
        self.fields_filled = Counter(
            "sharebus_quality_fields_filled",
            "Declared fields of the records read that were filled (not null, not blank)",
            ["provider", "data_class"],
            registry=registry,
        )
        for code, provider in self.provider.items():
            # Series exist at 0 from the start, so a class's rate is 0 rather than absent.
            for result in ("passed", "flagged", "rejected"):
                self.records.labels(provider, code, result)
            for rule in self.rules[code].rules:
                self.rule_failures.labels(provider, code, rule.rule_id)

    def judge(self, data_class: str, record: Mapping[str, object]) -> Verdict:
        return self.rules[data_class].evaluate(record)

    def rejection(self, data_class: str, verdict: Verdict, headers: HeaderList) -> QualityRejected:
        detail = f"failed quality rule(s) {', '.join(verdict.failed)} of data class {data_class}"
        for rule in self.rules[data_class].references:
            if rule.rule_id in verdict.failed:
                view = self.views.get(rule.references or "")
                if view is not None and not view.ready:
                    detail += f"; {rule.rule_id}: the referenced class's keys are not caught up (fail closed)"
        return QualityRejected(verdict, detail, headers)

    def count(self, data_class: str, verdict: Verdict) -> None:
        counts = self.counts[data_class]
        provider = self.provider[data_class]
        result = "rejected" if verdict.rejected_by else "flagged" if verdict.failed else "passed"
        counts.records += 1
        counts.passed += result == "passed"
        counts.filled += verdict.filled
        counts.fields += verdict.fields
        self._child(counts, result, self.records, provider, data_class, result).inc()
        for rule_id in verdict.failed:
            self._child(counts, rule_id, self.rule_failures, provider, data_class, rule_id).inc()
        self._child(counts, "declared", self.fields_declared, provider, data_class).inc(verdict.fields)
        self._child(counts, "filled", self.fields_filled, provider, data_class).inc(verdict.filled)

    @staticmethod
    def _child(counts: _ClassCounts, name: str, family: Counter, *labels: str) -> Counter:
        # labels() is too slow per record (metrics.py): the children are cached per class.
        child = counts.children.get(name)
        if child is None:
            child = counts.children[name] = family.labels(*labels)
        return cast(Counter, child)


def flagged(headers: HeaderList, verdict: Verdict | None) -> HeaderList:
    """The headers of a delivered record, with the rules it failed when its class flags failures."""
    if verdict is None or not verdict.failed:
        return headers
    return [*headers, (QUALITY, ",".join(verdict.failed).encode())]


class QualityScores(Collector):
    """The four scores per (provider, class), and delivery per provider, computed at scrape time.

    Completeness and validity are since this router started (a router's counters; with several
    router workers, take them from the counters in Prometheus: docs/quality.md). Timeliness and
    delivery come from the freshness tracker, which is seeded from the source topics' newest records at
    start, so a class never published shows 0 from the first scrape.
    """

    def __init__(
        self, catalogue: Catalogue, gate: QualityGate, freshness: FreshnessTracker, delivery_window: dt.timedelta
    ) -> None:
        self.catalogue = catalogue
        self.gate = gate
        self.freshness = freshness
        self.window = delivery_window

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["provider", "data_class"]
        families = {
            name: GaugeMetricFamily(f"sharebus_quality_{name}", text, labels=labels)
            for name, text in (
                ("completeness", "Share of the class's declared fields filled in the records read"),
                ("validity", "Share of the class's records read that passed every quality rule"),
                ("timeliness", "1 while the class's newest record is within its period plus grace, else 0"),
                ("delivery", "1 when the class was published within the delivery window, else 0"),
            )
        }
        by_provider = GaugeMetricFamily(
            "sharebus_quality_delivery_ratio",
            "Share of the provider's catalogued classes published within the delivery window",
            labels=["provider"],
        )
        now = dt.datetime.fromtimestamp(self.freshness.clock(), dt.UTC)
        per_provider: dict[str, list[bool]] = {d: [] for d in self.catalogue.departments}
        for item in self.freshness.report():
            values = [item.provider, item.data_class]
            counts = self.gate.counts[item.data_class]
            for name, score in (
                ("completeness", ratio(counts.filled, counts.fields)),
                ("validity", ratio(counts.passed, counts.records)),
            ):
                if score is not None:
                    families[name].add_metric(values, score)
            families["timeliness"].add_metric(values, 0.0 if item.overdue else 1.0)
            entry = self.catalogue.data_class(item.data_class)
            done = delivered(entry, item.last_record, now, self.freshness.policy, self.window)
            families["delivery"].add_metric(values, 1.0 if done else 0.0)
            per_provider.setdefault(item.provider, []).append(done)
        for provider, flags in sorted(per_provider.items()):
            if flags:
                by_provider.add_metric([provider], share(flags))
        yield from families.values()
        yield by_provider
        keys = GaugeMetricFamily(
            "sharebus_quality_reference_keys",
            "Keys of a referenced class in the router's view (reference rules check against it)",
            labels=["data_class"],
        )
        for code, view in sorted(self.gate.views.items()):
            keys.add_metric([code], len(view))
        yield keys
