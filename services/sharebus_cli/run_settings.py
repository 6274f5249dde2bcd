"""What ``sharebus run`` is set to: its ports, directories and demo, read by ``run`` and by ``status``.

Apart from ``run.py`` so that ``sharebus status`` reads the same settings without importing what the
run starts (the demo, the gateway's and the portal's code).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from sharebus_core.settings import REPO_ROOT, BusSettings, shared_config


class RunSettings(BusSettings):
    """Env prefix ``SHAREBUS_RUN_``."""

    model_config = shared_config("SHAREBUS_RUN_")

    log_dir: Path = REPO_ROOT / "var" / "logs"
    registry_port: int = 8081
    router_port: int = 6066
    routers: int = Field(default=1, ge=1, le=16, description="router workers sharing the source partitions")
    # The first worker serves router_port; the second router_more_port, the third router_more_port + 1, ...
    router_more_port: int = 6071
    auditor_port: int = 6067
    monitor_port: int = 6068
    prometheus_port: int = 9090
    prometheus_dir: Path = REPO_ROOT / "var" / "prometheus"
    gateway_port: int = 8080
    portal_port: int = 8090
    portal_accounts_file: Path = Field(
        default=REPO_ROOT / "var" / "portal" / "accounts.json",
        description="the portal's accounts (argon2 hashes); the demo sign-ins get new passwords on every run",
    )
    access_port: int = 6069
    credentials_dir: Path = Field(
        default=REPO_ROOT / "var" / "credentials",
        description="the operator's and the demo systems' Kafka credentials (0600 files), new on every run",
    )
    keys_dir: Path = Field(
        default=REPO_ROOT / "var" / "keys",
        description="the control plane's and the auditor's Ed25519 key pairs, made on first run",
    )
    land_system: str | None = Field(
        default="drc-credit",
        description="the demo system whose deliveries `sharebus land` keeps in var/land/<system>.db (empty: none)",
    )
    land_port: int = 6070
    disputes_dir: Path = Field(
        default=REPO_ROOT / "var" / "disputes",
        description="the gateway's index of deliveries (who received which record, for disputes), SQLite",
    )
    land_dir: Path = Field(default=REPO_ROOT / "var" / "land", description="where the demo sink's SQLite file lives")
    demo_rate: float = Field(default=40.0, gt=0, description="demo records per second, all departments")
    status_interval_s: float = 1.0
    state_file: Path = Field(
        default=REPO_ROOT / "var" / "run" / "state.json",
        description="what the running bus started and where (sharebus status reads it); removed when it stops",
    )


def scrape_token_path(settings: RunSettings) -> Path:
    """Where the run keeps the bus's scrape token: SHAREBUS_SCRAPE_TOKEN_FILE, else beside its state file.
    Made once (0600) and kept, so that a Prometheus or a shell that read it keeps working across runs."""
    return settings.scrape_token_file or settings.state_file.parent / "scrape-token"
