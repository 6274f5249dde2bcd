"""The router's clients are all on the stream listener (``RouterSettings.kafka``), none on the client one.

On the client listener the broker makes every connection re-authenticate every 10 s, and it cut the
router's loaded connections with their requests (docs/security.md). Here the client listener the
router is given is a port nobody listens on: the router can only start, provision, follow grants and
route if every one of its Kafka clients uses the stream listener.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.ports import free_port
from sharebus_core.settings import BusSettings
from sharebus_sdk import Publisher, PublisherSettings
from tests.integration.conftest import FIXTURE_CATALOGUE
from tests.support.identities import provision_bus
from tests.support.names import unique
from tests.support.registry import RegistryProcess
from tests.support.router import start_router
from tests.support.subscribe import collect

ENTERPRISE = "301001001/000001"


def test_the_router_routes_with_only_the_stream_listener_reachable(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    assert kafka_admin.stream_bootstrap is not None, "the project's broker has a stream listener"
    namespace = unique("t")
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    services = provision_bus(kafka_admin, catalogue, namespace, shared_registry.namespace)
    nobody = f"127.0.0.1:{free_port()}"
    router = start_router(
        services["router"],
        namespace,
        shared_registry.url,
        FIXTURE_CATALOGUE,
        tmp_path,
        extra_env={"SHAREBUS_BOOTSTRAP": nobody},
    )
    try:
        # The departments' side stays on the client listener.
        settings = BusSettings(
            **kafka_admin.settings_fields(),
            namespace=namespace,
            registry_url=shared_registry.url,
            catalogue_dir=FIXTURE_CATALOGUE,
        )
        with Publisher("AMR", PublisherSettings.model_validate(settings.model_dump()), catalogue) as publisher:
            record_id = publisher.publish(ENTERPRISE, enterprise())
        deliveries = collect(settings, "tax-levy", 1, idle_timeout_s=30).deliveries
        assert [d.record_id for d in deliveries] == [record_id]
    finally:
        router.stop()
    log = (tmp_path / f"router-{namespace}.log").read_text()
    assert nobody not in log, "a router client tried the client listener"


def enterprise() -> dict[str, object]:
    return {
        "uscc": "91500000MA0000001X",
        "name": "重庆测试企业有限公司",
        "legal_rep_name": "张三",
        "registered_capital": 100.0,
        "established": dt.date(2020, 1, 1),
        "seq": 1,
        "note": None,
    }
