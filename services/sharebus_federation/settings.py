"""Settings of the federation service (env prefix ``SHAREBUS_FEDERATION_``).

The MirrorMaker 2 launcher needs only the first group; ``python -m sharebus_federation`` also needs
where both buses are (``ServiceConfig``), and refuses to start, naming each one, when any is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from sharebus_broker.settings import REPO_ROOT, BrokerSettings, user_cache_dir
from sharebus_core.errors import SharebusError
from sharebus_core.scrape_auth import ScrapeToken, load_scrape_token

# The service's side settings: what it needs of each bus, by field name.
_SIDE_FIELDS = ("bootstrap", "credentials_file", "registry_url", "registry_credentials_file", "catalogue_dir")


class FederationSettingsError(SharebusError, ValueError):
    """A setting the federation service needs is missing; the message names the variables."""


@dataclass(frozen=True, slots=True)
class BusEnd:
    """One bus as the federation service reaches it. ``credentials_file``: MirrorMaker 2's principal
    on that cluster (a 0600 file); ``registry_credentials_file``: a writer of that bus's registry."""

    bootstrap: str
    credentials_file: Path
    registry_url: str
    registry_credentials_file: Path
    catalogue_dir: Path


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    city: BusEnd
    district: BusEnd


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

    # --- python -m sharebus_federation: both buses (service_config() checks they are all set) ---
    city_bootstrap: str | None = None
    city_credentials_file: Path | None = None
    city_registry_url: str | None = None
    city_registry_credentials_file: Path | None = None
    city_catalogue_dir: Path | None = None
    district_bootstrap: str | None = None
    district_credentials_file: Path | None = None
    district_registry_url: str | None = None
    district_registry_credentials_file: Path | None = None
    district_catalogue_dir: Path | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=6177, ge=0, le=65535)
    schema_sync_s: float = Field(default=1.0, gt=0, description="how often the schema follower looks")
    # How often MirrorMaker 2's status topics are read for /healthz (a probe never waits for that read).
    health_interval_s: float = Field(default=2.0, gt=0)
    # The bus-wide scrape token /metrics demands (un-prefixed, as every service reads it: sharebus_core.scrape_auth).
    scrape_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("scrape_token", "SHAREBUS_SCRAPE_TOKEN")
    )
    scrape_token_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("scrape_token_file", "SHAREBUS_SCRAPE_TOKEN_FILE")
    )

    def scrape_auth(self) -> ScrapeToken:
        """The token ``/metrics`` demands; raises ``ScrapeTokenError`` naming the variables when none is set."""
        return load_scrape_token(self.scrape_token, self.scrape_token_file)

    def jar_settings(self) -> BrokerSettings:
        """The broker's jar resolver resolves MirrorMaker 2 too (component ``mirror``)."""
        return BrokerSettings(kafka_version=self.kafka_version, cache_dir=self.cache_dir, heap=self.heap)

    def service_config(self) -> ServiceConfig:
        """Both buses' ends; raises ``FederationSettingsError`` naming every missing variable."""
        missing = [
            f"SHAREBUS_FEDERATION_{side.upper()}_{name.upper()}"
            for side in ("city", "district")
            for name in _SIDE_FIELDS
            if getattr(self, f"{side}_{name}") in (None, "")
        ]
        if missing:
            raise FederationSettingsError(f"the federation service needs {', '.join(missing)}")
        ends = {
            side: BusEnd(**{name: getattr(self, f"{side}_{name}") for name in _SIDE_FIELDS})
            for side in ("city", "district")
        }
        return ServiceConfig(city=ends["city"], district=ends["district"])


__all__ = ["BusEnd", "FederationSettings", "FederationSettingsError", "ServiceConfig"]
