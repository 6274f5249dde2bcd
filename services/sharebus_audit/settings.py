from __future__ import annotations

from pydantic import Field

from sharebus_core.settings import BusSettings, shared_config


class AuditorSettings(BusSettings):
    """Env prefix ``SHAREBUS_AUDITOR_``."""

    model_config = shared_config("SHAREBUS_AUDITOR_")

    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=6067, ge=0, le=65535)
    batch_size: int = Field(default=500, ge=1, description="facts per transaction at most")
    # The audit trail is evidence: kept forever unless an operator decides otherwise.
    retention_hours: int = Field(default=-1, ge=-1)
