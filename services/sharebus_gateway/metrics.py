"""The gateway's Prometheus metrics. Every label is bounded: route templates, methods, status codes,
catalogue class codes, and closed sets of reasons."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "sharebus_gateway_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "sharebus_gateway_request_seconds",
            "Time to the response's start, by route template",
            ["route"],
            registry=registry,
        )
        self.published = Counter(
            "sharebus_gateway_records_published",
            "Records accepted over HTTP and acknowledged by Kafka",
            ["data_class"],
            registry=registry,
        )
        self.rejected = Counter(
            "sharebus_gateway_records_rejected",
            "Records refused by validation (their whole batch is refused)",
            ["data_class"],
            registry=registry,
        )
        self.feed_connections = Gauge(
            "sharebus_gateway_feed_connections", "Open feed connections", ["transport"], registry=registry
        )
        self.feed_events = Counter(
            "sharebus_gateway_feed_events", "Records sent to feed clients", ["transport"], registry=registry
        )
        self.feed_disconnects = Counter(
            "sharebus_gateway_feed_disconnects",
            "Feed connections the gateway ended, by reason",
            ["reason"],
            registry=registry,
        )
        self.throttled = Counter(
            "sharebus_gateway_throttled",
            "Requests refused by a limit: rate (per key), feeds (per key), body_too_large",
            ["reason"],
            registry=registry,
        )
        self.stale_keys = Counter(
            "sharebus_gateway_stale_keys",
            "Requests refused with 401: a valid key whose system the catalogue no longer has "
            "(system_not_in_catalogue) or puts in another department (department_changed)",
            ["reason"],
            registry=registry,
        )
        self.forbidden = Counter(
            "sharebus_gateway_forbidden", "Requests refused with 403, by action", ["action"], registry=registry
        )
        # Public use of open data, per class: bounded by the catalogue's open classes ("" for key issuance),
        # a closed set of kinds and of access (anonymous, key).
        self.open_requests = Counter(
            "sharebus_gateway_open_requests",
            "Open-data requests by class, kind (records, feed, schema, key_issued) and access (anonymous, key)",
            ["data_class", "kind", "access"],
            registry=registry,
        )
        self.open_records = Counter(
            "sharebus_gateway_open_records_served",
            "Open-data records served to the public, by class and transport (records, feed)",
            ["data_class", "transport"],
            registry=registry,
        )
