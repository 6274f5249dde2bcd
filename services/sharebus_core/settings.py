"""Settings shared by every service.

Each service has one frozen pydantic-settings class with its own env prefix (``SHAREBUS_ROUTER_``,
``SHAREBUS_REGISTRY_``...). The few values every service needs (where the broker, the registry and
the catalogue are, and the topic namespace) are read from the same un-prefixed variables in all of
them, so one environment configures the whole bus.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOGUE_DIR = REPO_ROOT / "schemas"


def shared_config(env_prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=env_prefix, frozen=True, extra="ignore", populate_by_name=True)


class BusSettings(BaseSettings):
    """The values every sharebus process shares. Subclass it per service with its own prefix."""

    model_config = shared_config("SHAREBUS_")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("bootstrap_servers", "SHAREBUS_BOOTSTRAP"),
    )
    namespace: str = Field(
        default="sharebus",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}$",
        validation_alias=AliasChoices("namespace", "SHAREBUS_NAMESPACE"),
        description="Prefix of every topic; tests use a fresh one each",
    )
    registry_url: str = Field(
        default="http://127.0.0.1:8081",
        validation_alias=AliasChoices("registry_url", "SHAREBUS_REGISTRY_URL"),
    )
    catalogue_dir: Path = Field(
        default=DEFAULT_CATALOGUE_DIR,
        validation_alias=AliasChoices("catalogue_dir", "SHAREBUS_CATALOGUE_DIR"),
    )
