"""Registry semantics (ids, versions, deletes, levels) over an in-memory log (no broker)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import pytest

from sharebus_registry.compat import CompatibilityLevel
from sharebus_registry.errors import (
    IncompatibleSchema,
    InvalidVersion,
    SchemaNotFound,
    SubjectLevelNotConfigured,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from sharebus_registry.records import Record, decode
from sharebus_registry.schemas import ParsedSchema, parse
from sharebus_registry.state import RegistryState
from sharebus_registry.store import LATEST, SchemaStore, parse_version
from tests.unit.registry.memory_log import MemoryLog, make_store


def replay(log: MemoryLog) -> SchemaStore:
    """A fresh store rebuilt from the log alone, as after a restart."""
    store, fresh = make_store()
    for key, value in log.entries:
        decoded = decode(key, value)
        assert decoded is not None
        fresh.state.apply(decoded)
    return store


def person(*extra: dict[str, object]) -> ParsedSchema:
    fields = [{"name": "name", "type": "string"}, *extra]
    return parse(json.dumps({"type": "record", "name": "Person", "fields": fields}))


V1 = person()
V2 = person({"name": "age", "type": "int", "default": 0})
V2_NO_DEFAULT = person({"name": "age", "type": "int"})


def test_ids_are_global_and_versions_per_subject() -> None:
    store, _ = make_store()
    assert store.register("a", V1) == 1
    assert store.register("a", V2) == 2
    assert store.register("b", parse('"string"')) == 3
    assert store.versions("a") == [1, 2]
    assert store.versions("b") == [1]
    assert store.subjects() == ["a", "b"]


def test_the_same_schema_under_two_subjects_gets_the_same_id() -> None:
    store, _ = make_store()
    first = store.register("a", V1)
    reformatted = parse(json.dumps(json.loads(V1.text), indent=2))
    assert store.register("b", reformatted) == first
    assert store.get_version("b", 1).schema == V1.text
    assert [(entry.subject, entry.version) for entry in store.versions_of_id(first)] == [("a", 1), ("b", 1)]


def test_registering_an_existing_schema_again_adds_no_version() -> None:
    store, log = make_store()
    store.register("a", V1)
    writes = len(log.entries)
    assert store.register("a", V1) == 1
    assert len(log.entries) == writes
    assert store.versions("a") == [1]


def test_an_incompatible_schema_is_refused_and_nothing_is_written() -> None:
    store, log = make_store()
    store.register("a", V1)
    writes = len(log.entries)
    with pytest.raises(IncompatibleSchema) as caught:
        store.register("a", V2_NO_DEFAULT)
    assert caught.value.error_code == 409
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in caught.value.message
    assert len(log.entries) == writes


def test_the_subject_level_overrides_the_global_one() -> None:
    store, _ = make_store()
    store.register("a", V1)
    store.set_level("a", CompatibilityLevel.NONE)
    assert store.register("a", V2_NO_DEFAULT) == 2
    store.set_level(None, CompatibilityLevel.FORWARD)
    assert store.get_level(None) is CompatibilityLevel.FORWARD
    assert store.get_level("a") is CompatibilityLevel.NONE


def test_a_subject_without_its_own_level_answers_40408_unless_defaulting_to_global() -> None:
    store, _ = make_store()
    with pytest.raises(SubjectLevelNotConfigured):
        store.get_level("a")
    assert store.get_level("a", default_to_global=True) is CompatibilityLevel.BACKWARD


def test_deleting_levels() -> None:
    store, _ = make_store()
    store.set_level(None, CompatibilityLevel.FULL)
    store.set_level("a", CompatibilityLevel.NONE)
    assert store.delete_level("a") is CompatibilityLevel.NONE
    with pytest.raises(SubjectNotFound):
        store.delete_level("a")
    assert store.delete_level(None) is CompatibilityLevel.FULL
    assert store.get_level(None) is CompatibilityLevel.BACKWARD


def test_lookup_finds_the_version_of_a_schema() -> None:
    store, _ = make_store()
    store.register("a", V1)
    store.register("a", V2)
    found = store.lookup("a", V2)
    assert (found.version, found.schema_id) == (2, 2)
    with pytest.raises(SchemaNotFound):
        store.lookup("a", parse('"int"'))
    with pytest.raises(SubjectNotFound):
        store.lookup("nope", V1)


def test_soft_delete_hides_versions_and_keeps_ids_resolvable() -> None:
    store, _ = make_store()
    store.register("a", V1)
    store.register("a", V2)
    assert store.delete_version("a", 2) == 2
    assert store.versions("a") == [1]
    assert store.versions("a", include_deleted=True) == [1, 2]
    assert store.versions("a", deleted_only=True) == [2]
    with pytest.raises(VersionNotFound):
        store.get_version("a", 2)
    assert store.get_version("a", 2, include_deleted=True).deleted
    assert store.get_version("a", LATEST).version == 1
    assert store.schema_by_id(2) == V2.text
    with pytest.raises(VersionSoftDeleted):
        store.delete_version("a", 2)


def test_re_registering_a_soft_deleted_schema_makes_a_new_version_with_the_same_id() -> None:
    store, _ = make_store()
    store.register("a", V1)
    store.delete_subject("a")
    assert store.subjects() == []
    assert store.subjects(deleted_only=True) == ["a"]
    assert store.register("a", V1) == 1
    assert store.versions("a") == [2]


def test_subject_deletes_go_soft_then_permanent() -> None:
    store, _ = make_store()
    store.register("a", V1)
    store.register("a", V2)
    store.set_level("a", CompatibilityLevel.FULL)
    with pytest.raises(SubjectNotSoftDeleted):
        store.delete_subject("a", permanent=True)
    assert store.delete_subject("a") == [1, 2]
    with pytest.raises(SubjectNotFound):
        store.versions("a")
    with pytest.raises(SubjectSoftDeleted):
        store.delete_subject("a")
    assert store.delete_subject("a", permanent=True) == [1, 2]
    with pytest.raises(SubjectNotFound):
        store.versions("a", include_deleted=True)
    with pytest.raises(SchemaNotFound):
        store.schema_by_id(1)
    with pytest.raises(SubjectLevelNotConfigured):
        store.get_level("a")


def test_a_permanent_version_delete_needs_a_soft_delete_first() -> None:
    store, _ = make_store()
    store.register("a", V1)
    with pytest.raises(VersionNotSoftDeleted):
        store.delete_version("a", 1, permanent=True)
    store.delete_version("a", 1)
    assert store.delete_version("a", 1, permanent=True) == 1
    with pytest.raises(SubjectNotFound):
        store.get_version("a", 1, include_deleted=True)


def test_ids_still_used_elsewhere_survive_a_permanent_delete_and_new_ids_never_reuse_old_ones() -> None:
    store, _ = make_store()
    store.register("a", V1)
    store.register("b", V1)
    store.register("a", V2)
    store.delete_version("a", 2)
    store.delete_version("a", 2, permanent=True)
    store.delete_subject("a")
    store.delete_subject("a", permanent=True)
    assert store.schema_by_id(1) == V1.text
    with pytest.raises(SchemaNotFound):
        store.schema_by_id(2)
    assert store.register("c", parse('"bytes"')) == 3


def test_a_replayed_log_gives_the_same_answers_and_continues_the_ids() -> None:
    store, log = make_store()
    store.register("a", V1)
    store.register("a", V2)
    store.register("b", parse('"string"'))
    store.delete_version("a", 1)
    store.set_level("b", CompatibilityLevel.NONE)
    restarted = replay(log)
    assert restarted.subjects(include_deleted=True) == ["a", "b"]
    assert restarted.versions("a", include_deleted=True) == [1, 2]
    assert restarted.get_version("a", LATEST).schema_id == 2
    assert restarted.get_level("b") is CompatibilityLevel.NONE
    assert restarted.register("c", parse('"long"')) == 4


def test_compatibility_against_one_version_or_all() -> None:
    store, _ = make_store()
    store.register("a", V1)
    store.register("a", V2)
    # Reads version 1's data (age missing, defaulted) but not version 2's (age is an int there).
    string_age = person({"name": "age", "type": "string", "default": ""})
    assert store.test_compatibility("a", string_age, 1).is_compatible
    assert not store.test_compatibility("a", string_age, LATEST).is_compatible
    assert not store.test_compatibility("a", string_age).is_compatible
    assert store.test_compatibility("nope", V1).is_compatible
    with pytest.raises(SubjectNotFound):
        store.test_compatibility("nope", V1, LATEST)
    with pytest.raises(VersionNotFound):
        store.test_compatibility("a", V1, 9)


@pytest.mark.parametrize(
    ("text", "expected"), [("1", 1), ("latest", LATEST), ("-1", LATEST), ("2147483647", 2**31 - 1)]
)
def test_version_segments(text: str, expected: object) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["0", "-2", "2147483648", "one", ""])
def test_invalid_version_segments_answer_42202(text: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        parse_version(text)
    assert caught.value.error_code == 42202


class _GatedLog(MemoryLog):
    """Holds the first append until released, and records the size of every append."""

    def __init__(self, store_state: object) -> None:
        super().__init__(store_state)  # type: ignore[arg-type]
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, records: Sequence[Record]) -> None:
        self.entered.set()
        assert self.release.wait(10)
        self.sizes.append(len(records))
        super().append(records)


def test_registrations_arriving_during_a_write_are_committed_together() -> None:
    state = RegistryState()
    log = _GatedLog(state)
    store = SchemaStore(state, log)
    results: dict[str, int] = {}
    refused: dict[str, str] = {}

    def register(name: str, subject: str, schema: ParsedSchema) -> None:
        try:
            results[name] = store.register(subject, schema)
        except IncompatibleSchema as exc:
            refused[name] = str(exc)

    first = threading.Thread(target=register, args=("first", "s0", V1))
    first.start()
    assert log.entered.wait(10)
    queued = [
        ("b", "s1", person({"name": "b", "type": "int", "default": 0})),
        ("c", "s2", person({"name": "c", "type": "int", "default": 0})),
        ("same-as-b", "s3", person({"name": "b", "type": "int", "default": 0})),
        ("s0-again", "s0", V2),
        ("incompatible", "s0", parse('"string"')),
    ]
    threads = [threading.Thread(target=register, args=args) for args in queued]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(store._queue) < len(queued) and time.monotonic() < deadline:
        time.sleep(0.01)
    log.release.set()
    for thread in [first, *threads]:
        thread.join(10)
    # One write for the first; one for everything queued meanwhile (a subject queued twice waits
    # for a round of its own, and that round writes nothing: its schema is refused).
    assert log.sizes == [1, 4]
    assert results["first"] == 1
    assert results["b"] == results["same-as-b"] != results["c"]
    assert {results["b"], results["c"]} == {2, 3}
    assert results["s0-again"] == 4
    assert "incompatible with an earlier schema" in refused["incompatible"]
    assert store.versions("s0") == [1, 2]
    assert replay(log).get_version("s3", LATEST).schema_id == results["b"]


def test_setting_the_level_a_subject_already_has_writes_nothing() -> None:
    store, log = make_store()
    store.set_level("a", CompatibilityLevel.NONE)
    written = len(log.entries)
    assert store.set_level("a", CompatibilityLevel.NONE) is CompatibilityLevel.NONE
    assert len(log.entries) == written
    store.set_level("a", CompatibilityLevel.FULL)
    assert len(log.entries) == written + 1
