"""Each service under test runs with its own principal, provisioned as ``sharebus run`` does it.

The admin (``kafka_admin``) makes the principals and the catalogue's ACLs; tests keep it for
looking at topics and for writing what a test needs planted. A service never runs as the admin.
"""

from __future__ import annotations

import json

from sharebus_access.credentials import provision_access
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Service

BUS_SERVICES: tuple[Service, ...] = ("router", "auditor", "gateway", "monitor", "operator")
# Test namespaces (``unique(prefix)``) whose routers register schemas in the session's shared registry.
REGISTRY_WRITERS = ["t-*-router", "obs-*-router", "fz-*-router", "lim-*-router"]


def provision_bus(
    admin: KafkaAccess, catalogue: Catalogue, namespace: str, registry_namespace: str | None
) -> dict[Service, KafkaAccess]:
    """Fresh principals for every bus service of ``namespace`` and the catalogue's ACLs."""
    return provision_access(admin, catalogue, namespace, BUS_SERVICES, registry_namespace=registry_namespace)


def provision_registry(admin: KafkaAccess, catalogue: Catalogue, namespace: str) -> KafkaAccess:
    return provision_access(admin, catalogue, namespace, ("registry",))["registry"]


def registry_env() -> dict[str, str]:
    """A shared registry lets the test namespaces' routers register (they are bus principals)."""
    return {"SHAREBUS_REGISTRY_EXTRA_WRITERS": json.dumps(REGISTRY_WRITERS)}


__all__ = ["BUS_SERVICES", "provision_bus", "provision_registry", "registry_env"]
