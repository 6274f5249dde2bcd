"""The portal for tests: in memory (pages over TestClient, no Kafka), or as a process on a real bus."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from confluent_kafka import Message
from prometheus_client import CollectorRegistry

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.audit_fact import AuditFact
from sharebus_core.catalogue import Catalogue
from sharebus_core.compacted_log import LogFollower
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_gateway.audit import AuditWriter
from sharebus_grants import GrantService
from sharebus_portal.accounts import Account, AccountStore, Role, check_account, hash_password
from sharebus_portal.chain import ChainWatch
from sharebus_portal.disputes import DisputeView
from sharebus_portal.grant_view import GrantView
from sharebus_portal.reports import ReportCache
from sharebus_portal.sessions import SessionStore, SignInLimiter
from sharebus_portal.settings import PortalSettings
from sharebus_portal.state import OpenPreviews, Portal
from sharebus_report import Period, Report
from sharebus_report.model import Sources
from tests.support.keys import control_keys, writer_env

NOWHERE = KafkaAccess(bootstrap="127.0.0.1:9", security_protocol="PLAINTEXT")
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# (username, department, roles) of the fixture catalogue's officials.
OFFICIALS: tuple[tuple[str, str, tuple[Role, ...]], ...] = (
    ("tax.requester", "TAX", (Role.REQUESTER,)),
    ("tax.approver", "TAX", (Role.APPROVER,)),
    ("amr.approver", "AMR", (Role.APPROVER,)),
    ("amr.both", "AMR", (Role.REQUESTER, Role.APPROVER)),
    ("psb.requester", "PSB", (Role.REQUESTER,)),
    ("bureau", "HRSS", (Role.OPERATOR,)),
)


@functools.cache
def _password_hash() -> str:
    # argon2id is slow on purpose (about a second here); hashed once for every test account.
    return hash_password(PASSWORD)


def add_officials(catalogue: Catalogue, path: Path) -> AccountStore:
    store = AccountStore(path)
    for username, department, roles in OFFICIALS:
        account = Account(username=username, department=department, roles=roles, password_hash=_password_hash())
        check_account(catalogue, account)
        store.put(account)
    return store


class MemoryGrants(GrantService):
    """The grant service with its log in memory: the same workflow, no Kafka."""

    def __init__(self, catalogue: Catalogue, view: GrantView) -> None:
        super().__init__(catalogue, NOWHERE, "grants", control=control_keys())
        self.log: dict[str, Grant] = {}
        self.view = view

    def _read(self) -> dict[str, Grant]:
        return dict(self.log)

    def _write(self, grant: Grant) -> None:
        self.log[grant.grant_id] = grant
        self.view.put(grant)


class MemoryAudit(AuditWriter):
    def __init__(self) -> None:
        self.facts: list[AuditFact] = []

    def write(self, fact: AuditFact, timeout_s: float = 10.0) -> None:
        self.facts.append(fact)

    def close(self) -> None:
        return None


class CaughtUp(LogFollower):
    def __init__(self) -> None:
        super().__init__(NOWHERE, "grants", self._ignore, name="test-follower")
        self.caught_up.set()

    @staticmethod
    def _ignore(_msg: Message) -> None:
        return None

    def start(self) -> CaughtUp:
        return self

    def stop(self) -> None:
        return None


def memory_portal(settings: PortalSettings, catalogue: Catalogue, registry: CollectorRegistry) -> Portal:
    view = GrantView(catalogue)
    topics = TopicNames(settings.namespace)
    return Portal(
        settings=settings,
        catalogue=catalogue,
        topics=topics,
        accounts=AccountStore(settings.accounts_file),
        sessions=SessionStore(settings.session_ttl_s, settings.session_idle_s),
        limiter=SignInLimiter(
            settings.signin_max_failures,
            settings.signin_window_s,
            account_max_failures=settings.signin_account_max_failures,
            registry=registry,
        ),
        grants=MemoryGrants(catalogue, view),
        view=view,
        grant_follower=CaughtUp(),
        audit=MemoryAudit(),
        chain=ChainWatch(NOWHERE, topics.audit, topics.audit_anchors, None, 0),
        previews=OpenPreviews(settings.feed_max_connections),
        disputes=DisputeView(catalogue),
        reports=ReportCache(lambda period: empty_report(settings.namespace, period)),
    )


def empty_report(namespace: str, period: Period) -> Report:
    """A report with nothing in it: the pages' tests check the page, not the counting (tested in its own suite)."""
    return Report(namespace, period, period.end, (), (), Sources(0, 0, 0, 0, 0, 0))


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


@dataclass
class PortalProcess:
    service: Child
    base_url: str

    def stop(self) -> int | None:
        return self.service.stop()


def start_portal(
    access: KafkaAccess,
    namespace: str,
    registry_url: str,
    catalogue_dir: Path,
    accounts_file: Path,
    work_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> PortalProcess:
    """Starts a portal for ``namespace`` (its own principal in ``access``) once ``/readyz`` answers 200.

    Cookies are not marked Secure here: the tests reach it over plain http on 127.0.0.1."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **access.env(),
        "SHAREBUS_NAMESPACE": namespace,
        "SHAREBUS_REGISTRY_URL": registry_url,
        "SHAREBUS_CATALOGUE_DIR": str(catalogue_dir),
        "SHAREBUS_PORTAL_PORT": str(port),
        "SHAREBUS_PORTAL_ACCOUNTS_FILE": str(accounts_file),
        "SHAREBUS_PORTAL_LOG_LEVEL": "warning",
        "SHAREBUS_PORTAL_COOKIE_SECURE": "false",
        "SHAREBUS_PORTAL_FEED_KEEPALIVE_S": "1",
        "PYTHONUNBUFFERED": "1",
        **writer_env(),
        **(extra_env or {}),
    }
    service = start_child(
        f"portal {namespace}",
        "sharebus_portal",
        env,
        work_dir / f"portal-{namespace}.log",
        f"{base_url}/readyz",
        timeout_s,
    )
    return PortalProcess(service, base_url)


def signed_in_client(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "next": "/catalogue"})
    assert response.status_code == 303, response.text
    return client
