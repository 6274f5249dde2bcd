"""The router's side of the quality rules: judge each decoded record, count it, expose the scores.

Per record (``QualityGate.judge``) the class's compiled rules (``sharebus_rules.quality``) give a
verdict: the failed rules, whether a failure rejects it, its declared fields filled. The handler acts
on it (dead letter, or the ``sharebus-quality`` header) and puts ``verdict.as_fact()`` into the
record's audit fact (docs/quality.md). Counting happens once per record read from a source topic
(``count``): a held record is counted when it is held, not again when its window is released.

``QualityScores`` turns the freshness tracker into the delivery gauges at scrape time. The other
scores are PromQL over what is exported (docs/quality.md): completeness and validity are ratios of the
counters, correct summed over several workers, and timeliness is ``1 - sharebus_freshness_overdue``.
Labels are (provider, data_class) and (provider, data_class, rule), all from the catalogue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sharebus_core.catalogue import Catalogue
from sharebus_core.exposition import WHOLE, Shard
from sharebus_core.headers import QUALITY, HeaderList
from sharebus_router.dead_letters import BadRecord, DeadLetterReason
from sharebus_router.freshness import FreshnessTracker
from sharebus_rules.quality import ClassRules, KeyView, Verdict
from sharebus_rules.quality_scores import delivered, share


class QualityRejected(BadRecord):
    """A record whose failed rule rejects it; it carries the verdict for the audit fact."""

    def __init__(self, verdict: Verdict, detail: str, headers: HeaderList) -> None:
        super().__init__(DeadLetterReason.QUALITY, detail, verdict.rejected_by)
        self.verdict = verdict
        self.headers = headers


RESULTS = ("passed", "flagged", "rejected")


@dataclass
class ClassCounts:
    """One class's counts since the router started: plain integers on the hot path (no metric lock per
    record); ``QualityCounters`` exports them as Prometheus counters at scrape time."""

    results: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    rule_failures: dict[str, int] = field(default_factory=dict)
    filled: int = 0
    fields: int = 0

    @property
    def records(self) -> int:
        return sum(self.results.values())


class QualityGate:
    def __init__(
        self,
        catalogue: Catalogue,
        now: Callable[[], dt.datetime],
        views: Mapping[str, KeyView] | None = None,
    ) -> None:
        self.views = dict(views or {})
        self.rules: dict[str, ClassRules] = {
            code: ClassRules.compile(entry.quality, catalogue.schema(code).field_names, now, self.views)
            for code, entry in catalogue.data_classes.items()
        }
        self.provider = {code: entry.provider for code, entry in catalogue.data_classes.items()}
        # Every series exists at 0 from the start, so a class's rate is 0 rather than absent.
        self.counts: dict[str, ClassCounts] = {
            code: ClassCounts(rule_failures={r.rule_id: 0 for r in rules.rules}) for code, rules in self.rules.items()
        }
        # (class, fields filled) -> its completeness verdict; at most (fields + 1) per class.
        self._complete: dict[tuple[str, int], Verdict] = {}

    def judge(self, data_class: str, record: Mapping[str, object]) -> Verdict:
        return self.rules[data_class].evaluate(record)

    def reads_values(self, data_class: str) -> bool:
        """Whether judging a record of the class reads its values; else only how many fields are filled."""
        return bool(self.rules[data_class].rules)

    def completeness(self, data_class: str, filled: int) -> Verdict:
        """The verdict of a record of a class without rules (``reads_values``): ``judge``'s, from the count
        of its filled fields (``sharebus_rules.walk`` counts them as ``is_filled`` does)."""
        # One verdict per class and count, made once: it is immutable, and one per record cost a dataclass
        # instance (2% of the data path's samples, py-spy).
        key = (data_class, filled)
        verdict = self._complete.get(key)
        if verdict is None:
            verdict = self._complete[key] = Verdict((), None, filled, len(self.rules[data_class].fields))
        return verdict

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
        result = "rejected" if verdict.rejected_by else "flagged" if verdict.failed else "passed"
        counts.results[result] += 1
        for rule_id in verdict.failed:
            counts.rule_failures[rule_id] = counts.rule_failures.get(rule_id, 0) + 1
        counts.filled += verdict.filled
        counts.fields += verdict.fields


class QualityCounters(Collector):
    """The gate's counts as Prometheus counters (labels from the catalogue only)."""

    def __init__(self, gate: QualityGate) -> None:
        self.gate = gate

    def collect(self) -> Iterator[CounterMetricFamily]:
        return self.collect_shard(WHOLE)

    def collect_shard(self, shard: Shard) -> Iterator[CounterMetricFamily]:
        labels = ["provider", "data_class"]
        records = CounterMetricFamily(
            "sharebus_quality_records",
            "Records read from a source topic and checked against the class's quality rules, by result",
            labels=[*labels, "result"],
        )
        failures = CounterMetricFamily(
            "sharebus_quality_rule_failures",
            "Records that failed one quality rule (rule is <field>:<kind>)",
            labels=[*labels, "rule"],
        )
        declared = CounterMetricFamily(
            "sharebus_quality_fields_declared",
            "Declared fields (the class's schema fields) of the records read",
            labels=labels,
        )
        filled = CounterMetricFamily(
            "sharebus_quality_fields_filled", "Declared fields of the records read that were filled", labels=labels
        )
        for code, counts in self.gate.counts.items():
            # A class's series begin with its first record on this worker: with several workers, a
            # class whose partitions are all elsewhere adds none here.
            if not counts.records or not shard.holds_value(code):
                continue
            provider = self.gate.provider[code]
            for result, value in list(counts.results.items()):
                records.add_metric([provider, code, result], value)
            for rule_id, value in list(counts.rule_failures.items()):
                failures.add_metric([provider, code, rule_id], value)
            declared.add_metric([provider, code], counts.fields)
            filled.add_metric([provider, code], counts.filled)
        yield records
        yield failures
        yield declared
        yield filled


def flagged(headers: HeaderList, verdict: Verdict | None, shown: Collection[str] | None = None) -> HeaderList:
    """The headers of a delivered record, with the rules it failed when its class flags failures.

    ``shown``: the fields the receiver gets (None: every one). A rule on a field it does not get is not
    named to it: that a value it was not granted failed a check is news about that value.
    """
    if verdict is None or not verdict.failed:
        return headers
    failed = verdict.failed if shown is None else [r for r in verdict.failed if rule_field(r) in shown]
    return [*headers, (QUALITY, ",".join(failed).encode())] if failed else headers


def rule_field(rule_id: str) -> str:
    """The field a rule id (``<field>:<kind>``, ``QualityRule.rule_id``) is about."""
    return rule_id.partition(":")[0]


class QualityScores(Collector):
    """Delivery per (provider, class) and per provider, computed at scrape time.

    It comes from the freshness tracker, which is seeded from the source topics' newest records at
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
        return self.collect_shard(WHOLE)

    def collect_shard(self, shard: Shard) -> Iterator[GaugeMetricFamily]:
        """A class's delivery in its shard; the per-provider ratios (over every class) in shard 0."""
        by_class = GaugeMetricFamily(
            "sharebus_quality_delivery",
            "1 when the class was published within the delivery window, else 0",
            labels=["provider", "data_class"],
        )
        by_provider = GaugeMetricFamily(
            "sharebus_quality_delivery_ratio",
            "Share of the provider's catalogued classes published within the delivery window",
            labels=["provider"],
        )
        now = dt.datetime.fromtimestamp(self.freshness.clock(), dt.UTC)
        per_provider: dict[str, list[bool]] = {d: [] for d in self.catalogue.departments}
        ratios = shard.index == 0
        # With several router workers delivery comes from the one that tracks freshness.
        if self.freshness.active():
            for item in self.freshness.report(WHOLE if ratios else shard):
                entry = self.catalogue.data_class(item.data_class)
                done = delivered(entry, item.last_record, now, self.freshness.policy, self.window)
                if shard.holds_value(item.data_class):
                    by_class.add_metric([item.provider, item.data_class], 1.0 if done else 0.0)
                if ratios:
                    per_provider.setdefault(item.provider, []).append(done)
        for provider, flags in sorted(per_provider.items()):
            if flags:
                by_provider.add_metric([provider], share(flags))
        yield by_class
        yield by_provider
        keys = GaugeMetricFamily(
            "sharebus_quality_reference_keys",
            "Keys of a referenced class in the router's view (reference rules check against it)",
            labels=["data_class"],
        )
        for code, view in sorted(self.gate.views.items()):
            keys.add_metric([code], len(view))
        yield keys
