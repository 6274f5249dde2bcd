"""Settings of the MirrorMaker 2 launcher (env prefix ``SHAREBUS_FEDERATION_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sharebus_broker.settings import REPO_ROOT, BrokerSettings, user_cache_dir


class FederationSettings(BaseSettings):
    """Where MirrorMaker 2 keeps its files and how long it may take to start."""

    model_config = SettingsConfigDict(env_prefix="SHAREBUS_FEDERATION_", frozen=True, extra="ignore")

    namespace: str = Field(default="sharebus", pattern=r"^[a-z][a-z0-9-]*$")
    # The district's cluster alias in MirrorMaker and its label in metrics: short, bounded, no dots.
    district: str = Field(default="district", pattern=r"^[a-z][a-z0-9]{1,30}$")
    kafka_version: str = "4.1.1"
    cache_dir: Path = Field(default_factory=user_cache_dir)
    data_dir: Path = REPO_ROOT / "var" / "federation"
    heap: str = "512m"
    # The issue measured ~45 s for MirrorMaker 2 to mirror its first 1,000 records; a loaded two-core
    # machine needs more.
    start_timeout_s: float = Field(default=240.0, gt=0)
    refresh_topics_s: int = Field(default=5, ge=1, description="how soon a new federated topic is mirrored")

    def jar_settings(self) -> BrokerSettings:
        """The broker's jar resolver resolves MirrorMaker 2 too (component ``mirror``)."""
        return BrokerSettings(kafka_version=self.kafka_version, cache_dir=self.cache_dir, heap=self.heap)
