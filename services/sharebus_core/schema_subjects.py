"""Whether a record's schema id is one of its class's on this system's delivery topic, as the router checks.

A record on ``<ns>.dlv.<system>`` is written either with the projection the router registered for this
system and class (``<ns>.dlv.<system>.<class>-value``) or, for a system granted every field unmasked,
with the class's own schema (``<ns>.src.<class>-value``). A schema id registered under neither is
another schema than the record was written with: on a federated bus, a district registry that handed
out the city's ids for its own schemas resolves a city record's id to a district schema, and decoding
with it turns the record into wrong values without any error. Such a record is undecodable instead.

The subjects of an id are asked once and kept; a caller asks again on a mismatch (``fresh``: the subject
may have been imported after the id was first seen). Both readers of delivery topics check so before they
decode: the SDK's subscriber (again and again within its unknown-schema wait) and the gateway's feed (once,
``check_asking_again``).
"""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient

from sharebus_core.errors import SharebusError
from sharebus_core.topics import TopicNames

# Ids kept; a delivery topic sees a handful (one projection per class and grant change).
_MAX_IDS = 10_000
_MAGIC = 0


class SchemaSubjectMismatch(SharebusError, ValueError):
    """The record's schema id is not registered for its class on this delivery topic: not decoded."""


def schema_id_of(value: bytes | None) -> int | None:
    """The id of a Confluent-framed value, or None when it is not framed (the deserializer refuses it)."""
    if value is None or len(value) < 5 or value[0] != _MAGIC:
        return None
    return int.from_bytes(value[1:5], "big")


class SchemaSubjects:
    def __init__(self, registry: SchemaRegistryClient, topics: TopicNames, system: str) -> None:
        self.registry = registry
        self.topics = topics
        self.system = system
        self.topic = topics.delivery(system)
        self._subjects: dict[int, frozenset[str]] = {}
        # Per record otherwise; bounded by the catalogue's classes (a header naming no class fails the check).
        self._expected: dict[str, frozenset[str]] = {}

    def expected(self, data_class: str) -> frozenset[str]:
        """The subjects a record of ``data_class`` delivered to this system may be written with."""
        found = self._expected.get(data_class)
        if found is None:
            found = frozenset(
                {self.topics.projection_subject(self.system, data_class), self.topics.value_subject(data_class)}
            )
            if len(self._expected) < _MAX_IDS:
                self._expected[data_class] = found
        return found

    def subjects_of(self, schema_id: int, fresh: bool = False) -> frozenset[str]:
        """The subjects (visible to this system) ``schema_id`` is registered under; ``SchemaRegistryError``
        (40403) for an id the registry does not know."""
        known = self._subjects.get(schema_id)
        if known is not None and not fresh:
            return known
        found = frozenset(self.registry.get_subjects_by_schema_id(schema_id))
        if len(self._subjects) >= _MAX_IDS:
            self._subjects.clear()
        self._subjects[schema_id] = found
        return found

    def check(self, value: bytes | None, data_class: str, fresh: bool = False) -> None:
        """Raises ``SchemaSubjectMismatch`` unless the value's schema id is registered for its class here."""
        schema_id = schema_id_of(value)
        if schema_id is None:
            return
        subjects = self.subjects_of(schema_id, fresh)
        expected = self.expected(data_class)
        if not subjects & expected:
            raise SchemaSubjectMismatch(
                f"schema id {schema_id} is registered under {sorted(subjects)[:5] or 'no subject this system sees'}, "
                f"not under {sorted(expected)} (class {data_class or '(no class header)'} on {self.topic}): "
                f"this registry's schema {schema_id} is another schema than the record was written with, so it is "
                f"not decoded with it (on a federated bus: do the registries' id ranges overlap? docs/federation.md)"
            )

    def check_asking_again(self, value: bytes | None, data_class: str) -> None:
        """``check``, asking the registry once more when the subjects kept for the id do not match: the
        class's subject may have been imported since (a federated registry imports one subject at a time)."""
        schema_id = schema_id_of(value)
        kept = schema_id is not None and schema_id in self._subjects
        try:
            self.check(value, data_class)
        except SchemaSubjectMismatch:
            if not kept:
                raise
            self.check(value, data_class, fresh=True)


__all__ = ["SchemaSubjectMismatch", "SchemaSubjects", "schema_id_of"]
