"""Makes the broker and the registry match the catalogue: topics exist, schemas are registered."""

from sharebus_provision.bus import BusProvisioning, provision_bus
from sharebus_provision.errors import ProvisionError
from sharebus_provision.schemas import SchemaProvisioning, provision_schemas, register_catalogue_schemas
from sharebus_provision.topics import (
    AUDIT_PARTITIONS,
    AUDITOR_OUTAGE_SURVIVED_HOURS,
    FACTS_RETENTION_HOURS,
    TopicSpec,
    audit_topics,
    catalogue_topics,
    dispute_topics,
    ensure_topics,
    router_topics,
)

__all__ = [
    "AUDITOR_OUTAGE_SURVIVED_HOURS",
    "AUDIT_PARTITIONS",
    "FACTS_RETENTION_HOURS",
    "BusProvisioning",
    "ProvisionError",
    "SchemaProvisioning",
    "TopicSpec",
    "audit_topics",
    "catalogue_topics",
    "dispute_topics",
    "ensure_topics",
    "provision_bus",
    "provision_schemas",
    "register_catalogue_schemas",
    "router_topics",
]
