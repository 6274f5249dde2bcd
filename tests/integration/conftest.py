"""Fixtures for tests on the real broker: one registry for the session, one router per test."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Service
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_rules.periods import Window, window_containing
from tests.support.gateway import GatewayProcess, issue_key, start_gateway
from tests.support.identities import provision_bus, provision_registry, registry_env
from tests.support.kafka import eventually
from tests.support.names import unique
from tests.support.registry import RegistryProcess, start_registry
from tests.support.router import RouterProcess, start_router
from tests.support.scrape import scraped

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"


@pytest.fixture(scope="session")
def shared_registry(kafka_admin: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """Subjects are named after namespaced topics, so tests can share one registry."""
    namespace = unique("reg")
    access = provision_registry(kafka_admin, load_catalogue(FIXTURE_CATALOGUE), namespace)
    with start_registry(access, namespace, tmp_path_factory.mktemp("registry"), extra_env=registry_env()) as registry:
        yield registry


@pytest.fixture(scope="session")
def district_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaAccess]:
    """A second cluster, a district's bus, started by the same launcher as ``kafka_admin`` (the city's).

    Secured the same way, with its own CA and super user; only the federation tests start it.
    """
    data_dir: Path = tmp_path_factory.mktemp("kafka-district") / "data"
    settings = BrokerSettings(port=0, controller_port=0, data_dir=data_dir, heap="512m")
    with KafkaBroker(settings) as broker:
        yield broker.admin_access


@dataclass
class Bus:
    """A namespace of its own with a running router. ``access`` is the admin's, for the test to look
    and plant with; each service runs as its own principal from ``services``."""

    access: KafkaAccess
    namespace: str
    registry_url: str
    catalogue: Catalogue
    router: RouterProcess
    services: dict[Service, KafkaAccess]

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.namespace)

    def use_in_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Points the CLI (which reads its settings from the environment) at this bus, as the operator."""
        for name, value in self.services["operator"].env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SHAREBUS_NAMESPACE", self.namespace)
        monkeypatch.setenv("SHAREBUS_CATALOGUE_DIR", str(FIXTURE_CATALOGUE))

    @property
    def settings(self) -> BusSettings:
        return BusSettings(
            **self.access.settings_fields(),
            namespace=self.namespace,
            registry_url=self.registry_url,
            catalogue_dir=FIXTURE_CATALOGUE,
        )


@pytest.fixture
def bus(kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[Bus]:
    """A running router over the fixture catalogue, in a namespace of its own."""
    namespace = unique("t")
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    services = provision_bus(kafka_admin, catalogue, namespace, shared_registry.namespace)
    router = start_router(services["router"], namespace, shared_registry.url, FIXTURE_CATALOGUE, tmp_path)
    try:
        yield Bus(kafka_admin, namespace, shared_registry.url, catalogue, router, services)
    finally:
        router.stop()


def router_with_clock(
    access: KafkaAccess, namespace: str, registry: RegistryProcess, skew_file: Path, work_dir: Path
) -> RouterProcess:
    return start_router(
        access,
        namespace,
        registry.url,
        FIXTURE_CATALOGUE,
        work_dir,
        extra_env={"SHAREBUS_ROUTER_CLOCK_SKEW_FILE": str(skew_file)},
    )


@dataclass
class ClockedBus:
    bus: Bus
    registry: RegistryProcess
    skew_file: Path
    work_dir: Path

    def now(self) -> dt.datetime:
        """The router's clock."""
        return dt.datetime.fromtimestamp(time.time() + float(self.skew_file.read_text()), dt.UTC)

    def window(self, class_code: str) -> Window:
        """The window of a periodic class that is open on the router's clock."""
        return window_containing(self.bus.catalogue.data_class(class_code).update, self.now())

    def move_clock_past(self, instant: dt.datetime) -> None:
        """Sets the router's clock two seconds past ``instant`` and returns once the router runs on it
        (the clock only ever moves forward here)."""
        self.skew_file.write_text(str(instant.timestamp() + 2 - time.time()))
        url = f"{self.bus.router.base_url}/readyz"
        eventually(lambda: float(scraped(url).json()["clock"]), lambda t: t > instant.timestamp())

    def restart_router(self, name: str, kill: bool = False) -> None:
        if kill:
            self.bus.router.service.kill()  # SIGKILL: no flush, no commit, no goodbye to the group
        else:
            self.bus.router.stop()
        self.bus.router = router_with_clock(
            self.bus.services["router"], self.bus.namespace, self.registry, self.skew_file, self.work_dir / name
        )


@pytest.fixture
def clocked(kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[ClockedBus]:
    """A router over the fixture catalogue whose clock the test moves through its skew file."""
    skew_file = tmp_path / "clock-skew"
    # The router starts at five past the next hour, so that no window (all begin on the hour in the
    # fixture catalogue) ends by itself while a test is publishing into it.
    now = time.time()
    skew_file.write_text(str((now // 3600 + 1) * 3600 + 300 - now))
    namespace = unique("t")
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    services = provision_bus(kafka_admin, catalogue, namespace, shared_registry.namespace)
    router = router_with_clock(services["router"], namespace, shared_registry, skew_file, tmp_path / "first")
    bus = Bus(kafka_admin, namespace, shared_registry.url, catalogue, router, services)
    try:
        yield ClockedBus(bus, shared_registry, skew_file, tmp_path)
    finally:
        bus.router.stop()


@dataclass
class GatewayBus:
    """A bus with a running gateway, and one API key per fixture system."""

    bus: Bus
    gateway: GatewayProcess
    tokens: dict[str, str]

    def client(self, system: str | None = None) -> httpx.Client:
        return self.gateway.client(self.tokens[system] if system else None)

    def wait_for_key(self, token: str) -> None:
        """Keys reach the gateway through its follower: wait until this one authenticates."""
        with self.gateway.client(token) as client:
            status = eventually(
                lambda: client.get("/v1/catalogue/share-types").status_code, lambda code: code == 200, 20
            )
        assert status == 200


@pytest.fixture
def gateway_bus(bus: Bus, tmp_path: Path) -> Iterator[GatewayBus]:
    gateway = start_gateway(
        bus.services["gateway"],
        bus.namespace,
        bus.registry_url,
        FIXTURE_CATALOGUE,
        tmp_path,
        # Small, so the slow-client test fills a connection's queue quickly.
        extra_env={
            "SHAREBUS_GATEWAY_FEED_QUEUE_SIZE": "16",
            "SHAREBUS_GATEWAY_FEED_STALL_TIMEOUT_S": "2",
            "SHAREBUS_GATEWAY_FEED_KEEPALIVE_S": "1",
        },
    )
    try:
        tokens = {
            system: issue_key(bus.catalogue, bus.access, bus.topics.api_keys, system)
            for system in bus.catalogue.systems
        }
        gb = GatewayBus(bus, gateway, tokens)
        for token in tokens.values():
            gb.wait_for_key(token)
        yield gb
    finally:
        gateway.stop()
