"""The sink's progress as Prometheus metrics and a one-line status."""

from __future__ import annotations

import datetime as dt
import time

from prometheus_client import CollectorRegistry, Counter, Gauge


class LandMetrics:
    def __init__(self, system: str) -> None:
        self.system = system
        self.registry = CollectorRegistry()
        self.rows = Counter(
            "sharebus_land_rows", "rows landed (upserts and deletes)", ["data_class"], registry=self.registry
        )
        self.transactions = Counter("sharebus_land_transactions", "database transactions", registry=self.registry)
        self.batches = Counter(
            "sharebus_land_batches", "periodic batches landed whole", ["data_class"], registry=self.registry
        )
        self.last_batch = Gauge(
            "sharebus_land_last_batch_period_end_seconds",
            "end of the window of the last batch landed",
            ["data_class"],
            registry=self.registry,
        )
        self.lag_seconds = Gauge(
            "sharebus_land_lag_seconds",
            "now minus the publish time of the last record of the class landed",
            ["data_class"],
            registry=self.registry,
        )
        self.lag_records = Gauge(
            "sharebus_land_lag_records", "records on the delivery topic not yet read", registry=self.registry
        )
        self.stopped = Gauge(
            "sharebus_land_class_stopped",
            "1 when an incompatible schema stopped the class",
            ["data_class"],
            registry=self.registry,
        )
        self.revoked = Gauge(
            "sharebus_land_class_revoked",
            "1 while the class's grant is revoked or expired",
            ["data_class"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "sharebus_land_skipped",
            "records not landed (stopped class, unknown class)",
            ["data_class"],
            registry=self.registry,
        )
        self.lost = Counter(
            "sharebus_land_lost_to_retention",
            "delivery-topic offsets the topic's retention removed before they were landed",
            ["partition"],
            registry=self.registry,
        )
        self._published: dict[str, int] = {}
        self._total = 0
        self._last_batch = "none"
        self._lag = 0
        self._stopped: set[str] = set()
        self._revoked: set[str] = set()

    def landed(self, data_class: str, count: int, published_ns: int | None) -> None:
        self.rows.labels(data_class).inc(count)
        self._total += count
        if published_ns is not None:
            self._published[data_class] = max(self._published.get(data_class, 0), published_ns)

    def batch(self, data_class: str, batch_id: str, period_end: dt.datetime) -> None:
        self.batches.labels(data_class).inc()
        self.last_batch.labels(data_class).set(period_end.timestamp())
        self._last_batch = f"{data_class} until {period_end.isoformat()} ({batch_id})"

    def lost_to_retention(self, partition: int, _first: int, count: int) -> None:
        self.lost.labels(str(partition)).inc(count)

    def stop(self, data_class: str) -> None:
        self.stopped.labels(data_class).set(1)
        self._stopped.add(data_class)

    def revoke(self, data_class: str, revoked: bool) -> None:
        self.revoked.labels(data_class).set(1 if revoked else 0)
        (self._revoked.add if revoked else self._revoked.discard)(data_class)

    def refresh(self, lag_records: int) -> None:
        self._lag = lag_records
        self.lag_records.set(lag_records)
        now_ns = time.time_ns()
        for data_class, published in self._published.items():
            self.lag_seconds.labels(data_class).set(max(0.0, (now_ns - published) / 1e9))

    def status(self) -> str:
        stopped = ", ".join(sorted(self._stopped)) or "none"
        revoked = ", ".join(sorted(self._revoked)) or "none"
        return (
            f"{time.strftime('%H:%M:%S')} land {self.system} | rows {self._total:8d} | lag {self._lag:6d} records"
            f" | last batch {self._last_batch} | stopped {stopped} | revoked {revoked}"
        )
