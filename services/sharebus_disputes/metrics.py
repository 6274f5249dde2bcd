"""The dispute service's counters. Labels are closed sets: event types, and nothing else."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from sharebus_rules.disputes import EVENT_TYPES


class DisputeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "sharebus_disputes_events",
            "Dispute events written, by type (opened, refused, answered, corrected, rejected, overdue)",
            ["type"],
            registry=registry,
        )
        for kind in EVENT_TYPES:
            self.events.labels(kind)  # every type shows, at zero, before its first event
        self.overdue = Gauge(
            "sharebus_disputes_overdue", "Disputes unanswered past their deadline (escalated)", registry=registry
        )
        self.open = Gauge("sharebus_disputes_open", "Disputes awaiting the provider's answer", registry=registry)
        self.indexed = Counter(
            "sharebus_disputes_index_deliveries",
            "Deliveries indexed from the audit trail (who received which record)",
            registry=registry,
        )
