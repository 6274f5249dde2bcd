from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"


def user_cache_dir() -> Path:
    """Downloads (Maven repository, resolved jars) live under the user's cache directory."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sharebus"


class BrokerSettings(BaseSettings):
    """How the local broker is resolved and started. Env prefix ``SHAREBUS_BROKER_``."""

    model_config = SettingsConfigDict(env_prefix="SHAREBUS_BROKER_", frozen=True, extra="ignore", populate_by_name=True)

    # 4.1.x is the current line; 3.9.1 also works (set SHAREBUS_BROKER_KAFKA_VERSION=3.9.1).
    kafka_version: str = "4.1.1"
    host: str = "127.0.0.1"
    port: int = Field(default=9092, ge=0, le=65535, description="0 picks a free port")
    controller_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    stream_port: int = Field(
        default=0, ge=0, le=65535, description="the router's Faust listener (no forced re-auth); 0 picks a free port"
    )
    data_dir: Path = REPO_ROOT / "var" / "kafka"
    cache_dir: Path = Field(default_factory=user_cache_dir)
    heap: str = "1g"
    brokers: int = Field(
        default=1,
        ge=1,
        le=9,
        validation_alias=AliasChoices("brokers", "SHAREBUS_BROKERS"),
        description="nodes in the local KRaft cluster, each a broker and a controller (docs/brokers.md)",
    )
    # Generous: on a loaded two-core machine a JVM can take a minute to start.
    start_timeout_s: float = 120.0
    default_partitions: int = 3
    security: Literal["sasl_ssl", "plaintext"] = Field(
        default="sasl_ssl", description="plaintext is for debugging only; sharebus run warns loudly when it is on"
    )
    max_reauth_ms: int = Field(default=10_000, ge=1000, description="open connections re-authenticate this often")
