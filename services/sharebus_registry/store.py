"""The registry's operations: reads from the in-memory state, writes through the log.

A write decides its records from the current state, appends them to the log, and answers only once
the log reader has applied them, so the answer reflects the log. Writes are serialised by one lock:
this process is the topic's only writer (there is no leader election between registries).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal, Protocol

from sharebus_registry.compat import (
    CompatibilityLevel,
    CompatibilityResult,
    ExistingVersion,
    check_compatibility,
)
from sharebus_registry.errors import (
    ImportConflict,
    IncompatibleSchema,
    InvalidVersion,
    SchemaNotFound,
    StoreUnavailable,
    SubjectLevelNotConfigured,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from sharebus_registry.records import (
    ConfigKey,
    ConfigValue,
    HighWaterKey,
    HighWaterValue,
    Record,
    SchemaKey,
    SchemaValue,
)
from sharebus_registry.schemas import ParsedSchema
from sharebus_registry.state import RegisteredVersion, RegistryState

LATEST: Literal["latest"] = "latest"
VersionSpec = int | Literal["latest"]
_MAX_VERSION = 2**31 - 1


class Log(Protocol):
    def append(self, records: Sequence[Record]) -> None:
        """Writes the records, in order, and returns once the state has applied all of them."""


def parse_version(text: str) -> VersionSpec:
    """A version path segment: a number in [1, 2^31-1], ``latest``, or ``-1`` (Confluent's alias)."""
    if text == LATEST:
        return LATEST
    try:
        number = int(text)
    except ValueError:
        raise InvalidVersion(text) from None
    if number == -1:
        return LATEST
    if not 1 <= number <= _MAX_VERSION:
        raise InvalidVersion(text)
    return number


class _Registration:
    """One queued ``register`` call and, once committed, its answer."""

    __slots__ = ("done", "error", "schema", "schema_id", "subject")

    def __init__(self, subject: str, schema: ParsedSchema) -> None:
        self.subject = subject
        self.schema = schema
        self.done = False
        self.schema_id: int | None = None
        self.error: Exception | None = None

    def finish(self, *, schema_id: int | None = None, error: Exception | None = None) -> None:
        self.schema_id, self.error, self.done = schema_id, error, True


class SchemaStore:
    def __init__(self, state: RegistryState, log: Log) -> None:
        self.state = state
        self._log = log
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Registration] = []

    # --- reads --------------------------------------------------------------------------------

    def subjects(self, include_deleted: bool = False, deleted_only: bool = False) -> list[str]:
        if deleted_only:
            live = set(self.state.subjects())
            return [name for name in self.state.subjects(include_deleted=True) if name not in live]
        return self.state.subjects(include_deleted)

    def versions(self, subject: str, include_deleted: bool = False, deleted_only: bool = False) -> list[int]:
        versions = self.state.versions(subject, include_deleted or deleted_only)
        if not versions:
            raise SubjectNotFound(subject)
        return [entry.version for entry in versions if entry.deleted or not deleted_only]

    def get_version(self, subject: str, version: VersionSpec, include_deleted: bool = False) -> RegisteredVersion:
        versions = self.state.versions(subject, include_deleted)
        if not versions:
            raise SubjectNotFound(subject)
        if version == LATEST:
            return versions[-1]
        for entry in versions:
            if entry.version == version:
                return entry
        raise VersionNotFound(subject, version)

    def schema_by_id(self, schema_id: int) -> str:
        text = self.state.schema_text(schema_id)
        if text is None:
            raise SchemaNotFound(schema_id)
        return text

    def versions_of_id(self, schema_id: int, include_deleted: bool = False) -> list[RegisteredVersion]:
        self.schema_by_id(schema_id)
        return self.state.versions_of_id(schema_id, include_deleted)

    def get_level(self, subject: str | None, default_to_global: bool = False) -> CompatibilityLevel:
        if subject is None:
            return self.state.global_level()
        level = self.state.level(subject)
        if level is not None:
            return level
        if default_to_global:
            return self.state.global_level()
        raise SubjectLevelNotConfigured(subject)

    def lookup(self, subject: str, schema: ParsedSchema, include_deleted: bool = False) -> RegisteredVersion:
        versions = self.state.versions(subject, include_deleted)
        if not versions:
            raise SubjectNotFound(subject)
        schema_id = self.state.id_of(schema.canonical)
        matches = [entry for entry in versions if entry.schema_id == schema_id]
        if not matches:
            raise SchemaNotFound()
        return matches[-1]

    def test_compatibility(
        self, subject: str, schema: ParsedSchema, version: VersionSpec | None = None
    ) -> CompatibilityResult:
        """Against one version (under the subject's level), or with None against what the level names."""
        level = self.state.effective_level(subject)
        targets = self.state.versions(subject) if version is None else [self.get_version(subject, version)]
        return self._check(level, schema, targets)

    def _check(
        self, level: CompatibilityLevel, schema: ParsedSchema, targets: Sequence[RegisteredVersion]
    ) -> CompatibilityResult:
        existing: list[ExistingVersion] = []
        unreadable: list[str] = []
        for entry in targets:
            parsed = self.state.parsed(entry.schema_id)
            if parsed is None:
                unreadable.append(f"version {entry.version} in the log is not a valid Avro schema")
            else:
                existing.append(ExistingVersion(entry.version, parsed.avro))
        result = check_compatibility(level, schema.avro, existing)
        if unreadable and level is not CompatibilityLevel.NONE:
            return CompatibilityResult((*result.messages, *unreadable))
        return result

    # --- writes -------------------------------------------------------------------------------

    def register(self, subject: str, schema: ParsedSchema) -> int:
        """The schema's id under ``subject``, adding a version unless a live one already has it.

        Group commit: registrations that arrive while another is being written queue up, and the
        next writer decides and appends all of them at once (one produce and flush for the lot), so
        concurrent registrations do not each wait for a round trip to the broker.
        """
        ticket = _Registration(subject, schema)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._write_lock:
            if not ticket.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if ticket.error is not None:
            raise ticket.error
        assert ticket.schema_id is not None
        return ticket.schema_id

    def import_version(self, subject: str, schema: ParsedSchema, schema_id: int) -> int:
        """Adds ``schema`` under ``subject`` with the id another bus's registry gave it (federation).

        An id already held must be held for the same schema: an import can never make an id mean a
        second schema. An id of this registry's own range is taken only so: this registry issued it
        for that very schema, which came back (a district's class projected by the city for one of
        the district's own systems keeps the district's id); any other id of the range is refused,
        as only this registry hands those out. No compatibility check: the schema was checked where
        it was registered.
        """
        with self._write_lock:
            held = self.state.parsed(schema_id)
            if self.state.owns_id(schema_id) and held is None:
                raise ImportConflict(
                    f"id {schema_id} is in this registry's own range; only another bus's ids are imported"
                )
            if held is not None and held.canonical != schema.canonical:
                raise ImportConflict(f"id {schema_id} is already held for another schema")
            live = self.state.versions(subject)
            if any(entry.schema_id == schema_id for entry in live):
                return schema_id
            version = self.state.next_version(subject)
            # One id, one text: a held id is stored with the text it already has.
            text = self.state.schema_text(schema_id) or schema.text
            record = Record(SchemaKey(subject, version), SchemaValue(subject, version, schema_id, text))
            self._log.append([record])
            return self._applied(subject, version).schema_id

    def _commit(self, batch: list[_Registration]) -> None:
        """Writes a batch of registrations; a subject queued twice waits for the next round."""
        while batch:
            planned: list[tuple[_Registration, int]] = []
            records: list[Record] = []
            new_ids: dict[str, tuple[int, str]] = {}
            subjects: set[str] = set()
            later: list[_Registration] = []
            for ticket in batch:
                if ticket.subject in subjects:
                    later.append(ticket)
                    continue
                subjects.add(ticket.subject)
                try:
                    record = self._decide(ticket, new_ids)
                except IncompatibleSchema as exc:
                    ticket.finish(error=exc)
                    continue
                if isinstance(record, int):
                    ticket.finish(schema_id=record)
                    continue
                planned.append((ticket, record[1]))
                records.append(record[0])
            self._write(planned, records)
            batch = later

    def _decide(self, ticket: _Registration, new_ids: dict[str, tuple[int, str]]) -> tuple[Record, int] | int:
        """The record that registers ``ticket``, or the id when a live version already has the schema."""
        subject, schema = ticket.subject, ticket.schema
        live = self.state.versions(subject)
        existing_id = self.state.id_of(schema.canonical)
        if existing_id is not None and any(entry.schema_id == existing_id for entry in live):
            return existing_id
        level = self.state.effective_level(subject)
        result = self._check(level, schema, live)
        if not result.is_compatible:
            raise IncompatibleSchema(
                f'Schema being registered is incompatible with an earlier schema for subject "{subject}" '
                f"(compatibility {level.value}), details: [{'; '.join(result.messages)}]"
            )
        if existing_id is not None:
            # One id, one text: the same schema under another subject is served exactly as first stored.
            schema_id, text = existing_id, self.state.schema_text(existing_id) or schema.text
        elif schema.canonical in new_ids:
            schema_id, text = new_ids[schema.canonical]
        else:
            schema_id, text = self.state.next_id() + len(new_ids), schema.text
            new_ids[schema.canonical] = (schema_id, text)
        version = self.state.next_version(subject)
        return Record(SchemaKey(subject, version), SchemaValue(subject, version, schema_id, text)), version

    def _write(self, planned: list[tuple[_Registration, int]], records: list[Record]) -> None:
        if not records:
            return
        try:
            self._log.append(records)
            for ticket, version in planned:
                ticket.finish(schema_id=self._applied(ticket.subject, version).schema_id)
        except Exception as exc:  # noqa: BLE001 - every caller in the batch gets the writer's error, whatever it is
            for ticket, _version in planned:
                if not ticket.done:
                    ticket.finish(error=exc)

    def _applied(self, subject: str, version: int) -> RegisteredVersion:
        for entry in self.state.versions(subject, include_deleted=True):
            if entry.version == version:
                return entry
        raise StoreUnavailable(f"subject '{subject}' version {version} was written but is not in the log")

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        with self._write_lock:
            every = self.state.versions(subject, include_deleted=True)
            if not every:
                raise SubjectNotFound(subject)
            live = [entry for entry in every if not entry.deleted]
            records: list[Record]
            if permanent:
                if live:
                    raise SubjectNotSoftDeleted(subject)
                records = [*self._high_water(), *(Record(SchemaKey(subject, e.version), None) for e in every)]
                deleted = every
            else:
                if not live:
                    raise SubjectSoftDeleted(subject)
                records = [Record(SchemaKey(subject, entry.version), _soft_deleted(entry)) for entry in live]
                deleted = live
            # As Confluent: deleting a subject also drops its compatibility level.
            if self.state.level(subject) is not None:
                records.append(Record(ConfigKey(subject), None))
            self._log.append(records)
            return [entry.version for entry in deleted]

    def delete_version(self, subject: str, version: VersionSpec, permanent: bool = False) -> int:
        with self._write_lock:
            # A permanent delete targets soft-deleted versions, so it must see them (also as "latest");
            # a soft delete of a numbered version sees them to answer "already soft deleted".
            target = self.get_version(subject, version, include_deleted=permanent or version != LATEST)
            if permanent:
                if not target.deleted:
                    raise VersionNotSoftDeleted(subject, target.version)
                self._log.append([*self._high_water(), Record(SchemaKey(subject, target.version), None)])
            else:
                if target.deleted:
                    raise VersionSoftDeleted(subject, target.version)
                self._log.append([Record(SchemaKey(subject, target.version), _soft_deleted(target))])
            return target.version

    def _high_water(self) -> list[Record]:
        """The record keeping the highest issued id past compaction, to go before a permanent delete's.

        Before, not after: if the write stops between the two, an id is only kept from reuse, never freed.
        """
        highest = self.state.unrecorded_high_water()
        return [] if highest is None else [Record(HighWaterKey(), HighWaterValue(highest))]

    def set_level(self, subject: str | None, level: CompatibilityLevel) -> CompatibilityLevel:
        with self._write_lock:
            # Setting the level a subject already has writes nothing: every router start sets its
            # projections' subjects to NONE, thousands of them at city scale.
            if self.state.level(subject) is not level:
                self._log.append([Record(ConfigKey(subject), ConfigValue(level))])
            return self.get_level(subject, default_to_global=True)

    def delete_level(self, subject: str | None) -> CompatibilityLevel:
        """Removes a level and answers the one removed; the global level falls back to the default."""
        with self._write_lock:
            old = self.state.level(subject)
            if old is None:
                if subject is not None:
                    # Confluent answers "subject not found" here, not 40408.
                    raise SubjectNotFound(subject)
                old = self.state.global_level()
            self._log.append([Record(ConfigKey(subject), None)])
            return old


def _soft_deleted(entry: RegisteredVersion) -> SchemaValue:
    return SchemaValue(entry.subject, entry.version, entry.schema_id, entry.schema, deleted=True)
