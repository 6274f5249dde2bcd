from __future__ import annotations

from pydantic import Field

from sharebus_core.settings import BusSettings, shared_config


class MonitorSettings(BusSettings):
    """Env prefix ``SHAREBUS_MONITOR_``."""

    model_config = shared_config("SHAREBUS_MONITOR_")

    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=6068, ge=0, le=65535)
    # Lag is sampled on this interval rather than at scrape time, so a scrape never waits on Kafka
    # and the growth window has evenly spaced samples. Prometheus scrapes every 15 s: sampling more
    # often was unread work, two ListOffsets over every source partition each time (9,510 in the city).
    interval_s: float = Field(default=15.0, gt=0)
    growth_window_s: float = Field(default=300.0, gt=0, description="lag that only rose over this long is growing")
    request_timeout_s: float = Field(default=10.0, gt=0)
