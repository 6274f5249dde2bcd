"""A schema registry speaking the Confluent Schema Registry REST API, backed by a compacted Kafka topic.

As in Karapace, the topic ``<namespace>._schemas`` is the source of truth: every process rebuilds its
in-memory view by reading the topic from the beginning, and every write is answered only once it has
come back through the log.
"""

from sharebus_registry.settings import RegistrySettings

__all__ = ["RegistrySettings"]
