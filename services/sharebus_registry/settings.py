"""Settings of the schema registry process (env prefix ``SHAREBUS_REGISTRY_``)."""

from __future__ import annotations

from pydantic import Field

from sharebus_core.principals import ADMIN_USER, Principals, Service
from sharebus_core.settings import BusSettings, shared_config
from sharebus_core.topics import TopicNames
from sharebus_registry.state import ID_SPAN


class RegistrySettings(BusSettings):
    """Where the registry listens and who may change it; the broker and namespace are the shared bus variables."""

    model_config = shared_config("SHAREBUS_REGISTRY_")

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535, description="0 picks a free port")
    # Who may register, delete and change compatibility: the admin, these services of the registry's
    # namespace and of ``served_namespaces``, and ``extra_writers``. Everyone else authenticated only reads.
    writer_services: tuple[Service, ...] = ("registry", "router", "operator")
    served_namespaces: tuple[str, ...] = Field(
        default=(), description="other bus namespaces whose services use this registry (JSON list)"
    )
    extra_writers: tuple[str, ...] = Field(
        default=(), description="more writer principals; fnmatch patterns allowed, e.g. t-*-router (JSON list)"
    )
    # A verified credential is trusted this long: a revoked one stops working within it.
    auth_cache_ttl_s: float = Field(default=30.0, gt=0, le=300)
    # After a refused credential, that user's next verification waits this long (no fast guessing).
    auth_failure_delay_s: float = Field(default=1.0, ge=0)
    auth_verify_timeout_s: float = Field(default=10.0, gt=0)
    # Federated buses hand out disjoint ids (docs/federation.md): this registry's own ids are
    # ``first_id`` .. ``first_id + ID_SPAN - 1``; ids outside that range come only by import.
    first_id: int = Field(default=1, ge=1, le=2**31 - 1 - ID_SPAN)

    @property
    def topic(self) -> str:
        return TopicNames(self.namespace).schemas

    @property
    def writers(self) -> frozenset[str]:
        namespaces = (self.namespace, *self.served_namespaces)
        services = {Principals(ns).service(s) for ns in namespaces for s in self.writer_services}
        return frozenset({ADMIN_USER, *services, *self.extra_writers})
