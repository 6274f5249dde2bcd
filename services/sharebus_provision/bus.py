"""Provisions the bus's topics and its catalogue's schemas at once.

The two are independent: topics are the broker's work, schemas the registry's. The broker creates
each partition's log one after another, fsyncing its files (about 430 partitions a second on the
benchmark's machine, docs/benchmarks.md), so a city's 12,000 partitions keep it busy for half a
minute while the registry would otherwise wait its turn.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_provision.schemas import SchemaProvisioning, provision_projections, provision_schemas
from sharebus_provision.topics import TopicSpec, ensure_topics


@dataclass(frozen=True, slots=True)
class BusProvisioning:
    created: list[str]
    schemas: SchemaProvisioning
    # The catalogue-only projection subjects registered (provision_projections).
    projections: tuple[str, ...]
    # How long each took, side by side.
    topics_s: float
    schemas_s: float


def provision_bus(
    access: KafkaAccess,
    specs: list[TopicSpec],
    catalogue: Catalogue,
    topics: TopicNames,
    registry_url: str,
    registry_auth: str | None,
    timeout_s: float = 30.0,
    *,
    public: bool = False,
) -> BusProvisioning:
    """Creates the missing topics while registering the missing schemas, the classes' and the
    catalogue-only projections' (``public``: the router's ``public_delivery``); raises the topics'
    ``ProvisionError`` first, else the schemas', once both have finished (neither is left running)."""

    def timed_schemas() -> tuple[SchemaProvisioning, tuple[str, ...], float]:
        started = time.monotonic()
        classes = provision_schemas(catalogue, topics, registry_url, registry_auth)
        projections = provision_projections(catalogue, topics, registry_url, registry_auth, public=public)
        return classes, projections, time.monotonic() - started

    # Leaving the pool waits for the schemas, also when the topics fail: their error is raised then.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="provision-schemas") as pool:
        registering = pool.submit(timed_schemas)
        started = time.monotonic()
        created = ensure_topics(access, specs, timeout_s)
        topics_s = time.monotonic() - started
        schemas, projections, schemas_s = registering.result()
    return BusProvisioning(created, schemas, projections, topics_s, schemas_s)
