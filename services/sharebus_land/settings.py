"""The sink's settings (``SHAREBUS_LAND_*``), one frozen class."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

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
    # What a revoked (or expired) grant does to the rows its class already landed. Keep is the default:
    # the rows were lawfully received, the consumer's duties about them are its records policy's,
    # and a loader that deletes on an upstream event cannot undo a mistaken revocation.
    on_revoke: Literal["keep", "purge"] = "keep"
    # The sink learns of revocations from the gateway, with the system's own API key (a system reads
    # no control topic). Without them it cannot tell, and says so at start.
    gateway_url: str | None = None
    api_key: SecretStr | None = None
    grant_poll_s: float = Field(default=5.0, gt=0)
    max_records: int = Field(default=2000, ge=1, description="records per database transaction, at most")
    max_wait_ms: int = Field(default=200, ge=1, description="how long a transaction waits to fill")
    metrics_port: int | None = Field(default=None, description="serve Prometheus metrics here when set (0: any)")
    # Loopback unless asked: the sink runs on a department's own host, beside its database.
    metrics_host: str = Field(default="127.0.0.1", description="the address the metrics and probes listen on")
    status_interval_s: float = Field(default=5.0, gt=0)
