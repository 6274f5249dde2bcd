"""What the router and the monitor measure, read from their /metrics for the My data and Bureau pages.

Only counters the bus already exposes (calls, records, dead letters, freshness, lag), parsed from the
Prometheus text format: no topic is read for these pages. A metrics endpoint that does not answer
leaves its figures out; the page says so instead of failing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sharebus_core.errors import SharebusError
from sharebus_core.scrape_auth import scrape_headers

log = logging.getLogger(__name__)

Sample = tuple[dict[str, str], float]


def scrape(url: str | None, timeout_s: float = 2.0) -> dict[str, list[Sample]] | None:
    """Samples by name (``_total`` kept for counters), or None when the endpoint is not set or down."""
    if not url:
        return None
    try:
        # The bus's scrape token (SHAREBUS_SCRAPE_TOKEN_FILE): every /metrics answers only its holders.
        response = httpx.get(url, timeout=timeout_s, headers=scrape_headers())
        response.raise_for_status()
    except (httpx.HTTPError, SharebusError) as exc:
        log.warning("cannot read %s: %s", url, exc)
        return None
    samples: dict[str, list[Sample]] = defaultdict(list)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


@dataclass
class ClassFigures:
    data_class: str
    calls: float = 0.0
    records: float = 0.0
    dead_letters: float = 0.0
    consumers: set[str] = field(default_factory=set)
    age_s: float | None = None
    overdue: bool = False


def provided(samples: dict[str, list[Sample]], department: str, classes: list[str]) -> dict[str, ClassFigures]:
    """Per class the department provides: calls, records, consumers reached, dead letters, freshness."""
    figures = {code: ClassFigures(code) for code in classes}
    for labels, value in samples.get("sharebus_calls_total", []):
        entry = figures.get(labels.get("data_class", ""))
        if entry is not None and labels.get("provider") == department:
            entry.calls += value
            if value > 0:
                entry.consumers.add(labels.get("consumer", ""))
    for labels, value in samples.get("sharebus_records_total", []):
        entry = figures.get(labels.get("data_class", ""))
        if entry is not None and labels.get("provider") == department:
            entry.records += value
    for labels, value in samples.get("sharebus_dead_letters_total", []):
        entry = figures.get(labels.get("data_class", ""))
        if entry is not None:
            entry.dead_letters += value
    for labels, value in samples.get("sharebus_freshness_age_seconds", []):
        entry = figures.get(labels.get("data_class", ""))
        if entry is not None:
            entry.age_s = value
    for labels, value in samples.get("sharebus_freshness_overdue", []):
        entry = figures.get(labels.get("data_class", ""))
        if entry is not None:
            entry.overdue = value >= 1
    return figures


def overdue_providers(samples: dict[str, list[Sample]]) -> list[dict[str, str]]:
    return [labels for labels, value in samples.get("sharebus_freshness_overdue", []) if value >= 1]


def growing_lag(samples: dict[str, list[Sample]]) -> list[dict[str, str]]:
    lag = {(lb.get("group"), lb.get("topic")): v for lb, v in samples.get("sharebus_consumer_lag_records", [])}
    return [
        {**labels, "lag": f"{lag.get((labels.get('group'), labels.get('topic')), 0):.0f}"}
        for labels, value in samples.get("sharebus_consumer_lag_growing", [])
        if value >= 1
    ]
