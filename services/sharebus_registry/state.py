"""The in-memory view of the ``_schemas`` log: a pure function of the records applied, in order.

Only the log reader mutates it (``apply``); request handlers read it concurrently, so every access
takes the lock.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sharebus_registry.compat import DEFAULT_LEVEL, CompatibilityLevel
from sharebus_registry.errors import InvalidSchema
from sharebus_registry.records import (
    ConfigKey,
    ConfigValue,
    DeleteSubjectKey,
    DeleteSubjectValue,
    HighWaterKey,
    HighWaterValue,
    Record,
    SchemaKey,
    SchemaValue,
)
from sharebus_registry.schemas import AVRO, ParsedSchema, parse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool


# How many ids one registry hands out of its own (RegistrySettings.first_id).
ID_SPAN = 10_000_000


class RegistryState:
    def __init__(self, first_id: int = 1) -> None:
        self.first_id = first_id
        self._lock = threading.RLock()
        self._subjects: dict[str, dict[int, SchemaValue]] = {}
        self._texts: dict[int, str] = {}
        self._parsed: dict[int, ParsedSchema | None] = {}
        self._ids_by_canonical: dict[str, int] = {}
        self._references: dict[int, int] = {}
        self._levels: dict[str | None, CompatibilityLevel] = {}
        # Never lowered by deletes, so a permanently deleted id is not handed out again while the
        # process runs; across a restart, after compaction has removed its records, the high-water
        # record (records.py) keeps it. ``_high_water`` is the largest that record has said.
        self._max_id = first_id - 1
        self._high_water = first_id - 1

    # --- applying the log -------------------------------------------------------------------

    def apply(self, record: Record) -> None:
        with self._lock:
            key, value = record.key, record.value
            if isinstance(key, SchemaKey):
                if value is None:
                    self._remove_version(key)
                elif isinstance(value, SchemaValue):
                    self._put_version(key, value)
            elif isinstance(key, ConfigKey):
                if value is None:
                    self._levels.pop(key.subject, None)
                elif isinstance(value, ConfigValue):
                    self._levels[key.subject] = value.level
            elif isinstance(key, HighWaterKey) and isinstance(value, HighWaterValue):
                if self.owns_id(value.schema_id):
                    self._high_water = max(self._high_water, value.schema_id)
                    self._max_id = max(self._max_id, value.schema_id)
            elif isinstance(key, DeleteSubjectKey) and isinstance(value, DeleteSubjectValue):
                versions = self._subjects.get(key.subject, {})
                for number, entry in list(versions.items()):
                    if number <= value.version and not entry.deleted:
                        self._put_version(SchemaKey(key.subject, number), _soft_deleted(entry))

    def _put_version(self, key: SchemaKey, value: SchemaValue) -> None:
        if self.owns_id(value.schema_id):
            # An imported id (another bus's range) never moves this registry's own counter.
            self._max_id = max(self._max_id, value.schema_id)
        if value.schema_type != AVRO:
            log.warning(
                "ignoring %s schema %s version %s: only AVRO is supported", value.schema_type, key.subject, key.version
            )
            return
        versions = self._subjects.setdefault(key.subject, {})
        old = versions.get(key.version)
        versions[key.version] = value
        self._add_reference(value)
        if old is not None:
            self._drop_reference(old.schema_id)

    def _remove_version(self, key: SchemaKey) -> None:
        versions = self._subjects.get(key.subject)
        if versions is None or key.version not in versions:
            return
        old = versions.pop(key.version)
        if not versions:
            del self._subjects[key.subject]
        self._drop_reference(old.schema_id)

    def _add_reference(self, value: SchemaValue) -> None:
        schema_id = value.schema_id
        self._references[schema_id] = self._references.get(schema_id, 0) + 1
        if schema_id in self._texts:
            return
        self._texts[schema_id] = value.schema
        try:
            parsed: ParsedSchema | None = parse(value.schema)
        except InvalidSchema as exc:
            # Written by another tool, or under rules we do not share: serve it, but it can take
            # part neither in identity nor in compatibility checks.
            log.warning("schema id %s in the log does not parse: %s", schema_id, exc.message)
            parsed = None
        self._parsed[schema_id] = parsed
        canonical = parsed.canonical if parsed is not None else value.schema
        self._ids_by_canonical.setdefault(canonical, schema_id)

    def _drop_reference(self, schema_id: int) -> None:
        remaining = self._references.get(schema_id, 0) - 1
        if remaining > 0:
            self._references[schema_id] = remaining
            return
        self._references.pop(schema_id, None)
        text = self._texts.pop(schema_id, None)
        parsed = self._parsed.pop(schema_id, None)
        canonical = parsed.canonical if parsed is not None else text
        if canonical is not None and self._ids_by_canonical.get(canonical) == schema_id:
            del self._ids_by_canonical[canonical]

    # --- queries ----------------------------------------------------------------------------

    def subjects(self, include_deleted: bool = False) -> list[str]:
        with self._lock:
            return sorted(
                name
                for name, versions in self._subjects.items()
                if include_deleted or any(not entry.deleted for entry in versions.values())
            )

    def versions(self, subject: str, include_deleted: bool = False) -> list[RegisteredVersion]:
        """The subject's versions, oldest first; empty when it has none (at all, or live)."""
        with self._lock:
            versions = self._subjects.get(subject, {})
            return [
                RegisteredVersion(subject, number, entry.schema_id, entry.schema, entry.deleted)
                for number, entry in sorted(versions.items())
                if include_deleted or not entry.deleted
            ]

    def schema_text(self, schema_id: int) -> str | None:
        with self._lock:
            return self._texts.get(schema_id)

    def parsed(self, schema_id: int) -> ParsedSchema | None:
        with self._lock:
            return self._parsed.get(schema_id)

    def id_of(self, canonical: str) -> int | None:
        with self._lock:
            return self._ids_by_canonical.get(canonical)

    def versions_of_id(self, schema_id: int, include_deleted: bool = False) -> list[RegisteredVersion]:
        with self._lock:
            return [
                RegisteredVersion(subject, number, entry.schema_id, entry.schema, entry.deleted)
                for subject, versions in sorted(self._subjects.items())
                for number, entry in sorted(versions.items())
                if entry.schema_id == schema_id and (include_deleted or not entry.deleted)
            ]

    def owns_id(self, schema_id: int) -> bool:
        return self.first_id <= schema_id < self.first_id + ID_SPAN

    def next_id(self) -> int:
        with self._lock:
            return self._max_id + 1

    def unrecorded_high_water(self) -> int | None:
        """The highest own id issued, when the log's high-water record does not say it yet."""
        with self._lock:
            return self._max_id if self._max_id > self._high_water else None

    def next_version(self, subject: str) -> int:
        # Soft-deleted versions keep their numbers; only a permanent delete frees them.
        with self._lock:
            return max(self._subjects.get(subject, {}), default=0) + 1

    def level(self, subject: str | None) -> CompatibilityLevel | None:
        with self._lock:
            return self._levels.get(subject)

    def global_level(self) -> CompatibilityLevel:
        with self._lock:
            return self._levels.get(None, DEFAULT_LEVEL)

    def effective_level(self, subject: str) -> CompatibilityLevel:
        with self._lock:
            return self._levels.get(subject) or self.global_level()


def _soft_deleted(entry: SchemaValue) -> SchemaValue:
    return SchemaValue(entry.subject, entry.version, entry.schema_id, entry.schema, True, entry.schema_type)
