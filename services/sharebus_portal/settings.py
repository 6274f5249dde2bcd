from __future__ import annotations

from pathlib import Path

from pydantic import Field

from sharebus_core.settings import REPO_ROOT, BusSettings, shared_config


class PortalSettings(BusSettings):
    """Env prefix ``SHAREBUS_PORTAL_`` (plus the shared ``SHAREBUS_BOOTSTRAP`` etc.)."""

    model_config = shared_config("SHAREBUS_PORTAL_")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    log_level: str = "info"
    accounts_file: Path = Field(
        default=REPO_ROOT / "var" / "portal" / "accounts.json",
        description="the officials' accounts (argon2 hashes, never a password), kept by `sharebus portal account`",
    )
    # Sessions live in this process only: a restart signs everyone out, and nothing about them is on disk.
    session_ttl_s: float = Field(default=8 * 3600, gt=0)
    session_idle_s: float = Field(default=30 * 60, gt=0)
    # Secure cookies: browsers keep them over https, and over http only for localhost/127.0.0.1.
    cookie_secure: bool = True
    # A request body over this is refused with 413 before it is read whole or parsed, sign-in included:
    # the largest form (an application naming every field) is far smaller.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Failed sign-ins: at most this many per client address (an IPv6 one by its /64) in the window, and
    # per account name from all addresses together (default: ten times signin_max_failures), higher so that
    # a few wrong passwords from one place cannot keep an official locked out (``SignInLimiter``).
    signin_max_failures: int = Field(default=5, ge=1)
    signin_account_max_failures: int | None = Field(default=None, ge=1)
    signin_window_s: float = Field(default=300.0, gt=0)
    # Password checks (argon2id, slow and memory-hard) at once, and sign-ins queued for one; past both, a
    # sign-in is refused at once with 503 (``PasswordChecks``), so a flood cannot take every thread.
    signin_max_checks: int = Field(default=4, ge=1)
    signin_max_waiting: int = Field(default=32, ge=0)
    # Where the router's and the monitor's /metrics are (My data and Bureau pages); empty: not shown.
    router_metrics_url: str | None = None
    monitor_metrics_url: str | None = None
    gateway_url: str | None = None
    # The bureau page's audit chain status is checked in the background this often (0: never).
    audit_check_interval_s: float = Field(default=300.0, ge=0)
    # The live preview: the same bounded feed as the gateway's SSE feed.
    feed_queue_size: int = Field(default=64, ge=1)
    feed_stall_timeout_s: float = Field(default=10.0, gt=0)
    feed_poll_records: int = Field(default=50, ge=1)
    feed_dedupe_window: int = Field(default=2_000, ge=0)
    feed_keepalive_s: float = Field(default=15.0, gt=0)
    feed_max_connections: int = Field(default=50, ge=1)
