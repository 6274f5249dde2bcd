"""A broker restart under a running bus: the router and registry reconnect, nothing published is lost."""

from __future__ import annotations

from pathlib import Path

from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_core.settings import BusSettings
from tests.integration.conftest import FIXTURE_CATALOGUE
from tests.support.names import unique
from tests.support.records import publish_enterprises
from tests.support.registry import start_registry
from tests.support.router import start_router
from tests.support.subscribe import collect


def test_the_bus_rides_out_a_broker_restart(tmp_path: Path) -> None:
    broker = KafkaBroker(BrokerSettings(port=0, controller_port=0, data_dir=tmp_path / "kafka", heap="512m")).start()
    namespace = unique("t")
    registry = start_registry(broker.admin_access, namespace, tmp_path)
    router = start_router(broker.admin_access, namespace, registry.url, FIXTURE_CATALOGUE, tmp_path)
    settings = BusSettings(
        **broker.admin_access.settings_fields(),
        namespace=namespace,
        registry_url=registry.url,
        catalogue_dir=FIXTURE_CATALOGUE,
    )
    try:
        publish_enterprises(settings, range(0, 100))
        broker.stop()
        broker.start()  # same data directory, same ports
        publish_enterprises(settings, range(100, 200))
        received = collect(settings, "tax-levy", 200, idle_timeout_s=60)
        assert {v["seq"] for v in received.values} == set(range(200))
        assert router.service.alive(), router.service.tail()
    finally:
        router.stop()
        registry.stop()
        broker.stop()
