"""Settings of the schema registry process (env prefix ``SHAREBUS_REGISTRY_``)."""

from __future__ import annotations

from pydantic import Field

from sharebus_core.settings import BusSettings, shared_config
from sharebus_core.topics import TopicNames


class RegistrySettings(BusSettings):
    """Where the registry listens. The broker and namespace come from the shared bus variables."""

    model_config = shared_config("SHAREBUS_REGISTRY_")

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535, description="0 picks a free port")

    @property
    def topic(self) -> str:
        return TopicNames(self.namespace).schemas
