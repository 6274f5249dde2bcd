"""What every page needs: settings, catalogue, accounts, sessions, the followed grants, and the writers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.templating import Jinja2Templates
from starlette.requests import HTTPConnection

from sharebus_core.catalogue import Catalogue
from sharebus_core.compacted_log import LogFollower
from sharebus_core.topics import TopicNames
from sharebus_gateway.audit import AuditWriter
from sharebus_grants import GrantService
from sharebus_portal.accounts import AccountStore
from sharebus_portal.chain import ChainWatch
from sharebus_portal.disputes import DisputeView
from sharebus_portal.grant_view import GrantView
from sharebus_portal.password_checks import PasswordChecks
from sharebus_portal.reports import ReportCache
from sharebus_portal.sessions import SessionStore, SignInLimiter
from sharebus_portal.settings import PortalSettings

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@dataclass
class OpenPreviews:
    """Open live previews across all sessions, capped so they cannot exhaust the portal's threads."""

    limit: int
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        with self._lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.count -= 1


@dataclass
class Portal:
    settings: PortalSettings
    catalogue: Catalogue
    topics: TopicNames
    accounts: AccountStore
    sessions: SessionStore
    limiter: SignInLimiter
    grants: GrantService
    view: GrantView
    grant_follower: LogFollower
    audit: AuditWriter
    chain: ChainWatch
    previews: OpenPreviews
    disputes: DisputeView
    reports: ReportCache
    # None only in unit tests that build the portal without Kafka.
    dispute_follower: LogFollower | None = None
    checks: PasswordChecks = field(init=False)

    def __post_init__(self) -> None:
        self.checks = PasswordChecks(self.settings.signin_max_checks, self.settings.signin_max_waiting)


def portal(connection: HTTPConnection) -> Portal:
    state: Portal = connection.app.state.portal
    return state
