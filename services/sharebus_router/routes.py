"""Per source topic, everything the hot path needs, computed once from the catalogue and the rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue
from sharebus_core.topics import TopicNames
from sharebus_router.metrics import RouterMetrics
from sharebus_rules import plan_routes


@dataclass(frozen=True, slots=True)
class Target:
    topic: str
    extra_headers: tuple[tuple[str, bytes], ...]
    calls: Any
    records: Any


@dataclass(frozen=True, slots=True)
class ClassRoute:
    data_class: str
    provider: str
    mode: str
    subjects: frozenset[str]
    targets: tuple[Target, ...]
    denial_counters: tuple[Any, ...]
    received: Any
    latency: Any


def build_routes(catalogue: Catalogue, topics: TopicNames, metrics: RouterMetrics) -> dict[str, ClassRoute]:
    routes: dict[str, ClassRoute] = {}
    for code, entry in catalogue.data_classes.items():
        plan = plan_routes(catalogue, code)
        mode = entry.mode.value
        targets = tuple(
            Target(
                topic=topics.delivery(d.consumer),
                extra_headers=((h.CONSUMER, d.consumer.encode()), (h.MODE, mode.encode())),
                calls=metrics.calls.labels(entry.provider, d.consumer, code, mode),
                records=metrics.records.labels(entry.provider, d.consumer, code, mode),
            )
            for d in plan.deliveries
        )
        denials = tuple(metrics.denials.labels(entry.provider, d.consumer, code, d.reason.value) for d in plan.denials)
        routes[topics.source(code)] = ClassRoute(
            data_class=code,
            provider=entry.provider,
            mode=mode,
            subjects=frozenset({topics.value_subject(code)}),
            targets=targets,
            denial_counters=denials,
            received=metrics.received.labels(entry.provider, code, mode),
            latency=metrics.latency.labels(mode),
        )
    return routes
