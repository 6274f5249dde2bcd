"""Makes the broker and the registry match the catalogue: topics exist, schemas are registered."""

from sharebus_provision.schemas import ProvisionError, register_catalogue_schemas
from sharebus_provision.topics import TopicSpec, catalogue_topics, ensure_topics

__all__ = ["ProvisionError", "TopicSpec", "catalogue_topics", "ensure_topics", "register_catalogue_schemas"]
