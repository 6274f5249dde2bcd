"""The sink's settings (``SHAREBUS_LAND_*``), one frozen class."""

from __future__ import annotations

from pydantic import Field

from sharebus_core.settings import BusSettings, shared_config


class LandSettings(BusSettings):
    model_config = shared_config("SHAREBUS_LAND_")

    system: str | None = Field(default=None, description="the consumer system whose deliveries land")
    database_url: str = Field(
        default="sqlite:///var/land/land.db",
        description="SQLAlchemy URL: sqlite:///path (default) or postgresql://user@host:port/db",
    )
    # {"enterprise": ["301001001/000001", "301001002/000001"]}: classes sharing one key land in one wide table.
    themes: dict[str, list[str]] = Field(default_factory=dict)
    max_records: int = Field(default=2000, ge=1, description="records per database transaction, at most")
    max_wait_ms: int = Field(default=200, ge=1, description="how long a transaction waits to fill")
    metrics_port: int | None = Field(default=None, description="serve Prometheus metrics here when set (0: any)")
    status_interval_s: float = Field(default=5.0, gt=0)
