"""The one naming scheme for principals (SCRAM users) on the cluster.

Each bus service has its own principal per namespace, and each catalogue system has one. Names
are per namespace so that several buses (and every test) can share a cluster without sharing
credentials. The admin principal is the cluster's only super user: it provisions topics, users
and ACLs, and nothing else runs with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ADMIN_USER = "sharebus-admin"

Service = Literal["registry", "router", "auditor", "gateway", "monitor", "operator", "portal"]
SERVICES: tuple[Service, ...] = ("registry", "router", "auditor", "gateway", "monitor", "operator", "portal")


@dataclass(frozen=True, slots=True)
class Principals:
    namespace: str = "sharebus"

    def service(self, service: Service) -> str:
        """A bus service's SCRAM user, e.g. ``sharebus-router``."""
        return f"{self.namespace}-{service}"

    def system(self, system: str) -> str:
        """A catalogue system's SCRAM user, e.g. ``sharebus.tax-levy``."""
        return f"{self.namespace}.{system}"

    def system_of(self, username: str) -> str | None:
        """The system a SCRAM user stands for, or None when it is not one of this namespace's systems."""
        prefix = f"{self.namespace}."
        return username[len(prefix) :] if username.startswith(prefix) else None

    def service_of(self, username: str) -> Service | None:
        for service in SERVICES:
            if username == self.service(service):
                return service
        return None

    def consumer_group_prefix(self, system: str) -> str:
        """Consumer groups a system may use: ``<ns>.<system>.`` and below."""
        return f"{self.namespace}.{system}."


__all__ = ["ADMIN_USER", "SERVICES", "Principals", "Service"]
