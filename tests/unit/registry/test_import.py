"""Federation: a registry hands out ids of its own range only, and imports another bus's ids as they are."""

from __future__ import annotations

import pytest

from sharebus_registry.errors import ImportConflict
from sharebus_registry.records import decode
from sharebus_registry.state import ID_SPAN, RegistryState
from sharebus_registry.store import SchemaStore
from tests.unit.registry.memory_log import MemoryLog
from tests.unit.registry.test_store import V1, V2, person

DISTRICT_FIRST = 1 + ID_SPAN


def store_from(first_id: int) -> tuple[SchemaStore, MemoryLog]:
    state = RegistryState(first_id)
    log = MemoryLog(state)
    return SchemaStore(state, log), log


def test_ids_start_at_first_id() -> None:
    district, _ = store_from(DISTRICT_FIRST)
    assert district.register("a", V1) == DISTRICT_FIRST
    assert district.register("a", V2) == DISTRICT_FIRST + 1


def test_an_imported_id_resolves_and_does_not_move_the_own_counter() -> None:
    city, log = store_from(1)
    assert city.register("c", person({"name": "x", "type": "int"})) == 1
    assert city.import_version("d", V1, DISTRICT_FIRST + 7) == DISTRICT_FIRST + 7
    assert city.schema_by_id(DISTRICT_FIRST + 7) == V1.text
    assert [v.subject for v in city.versions_of_id(DISTRICT_FIRST + 7)] == ["d"]
    assert city.register("e", V2) == 2  # not DISTRICT_FIRST + 8
    # Importing again is a no-op; a restart replays the same answers.
    assert city.import_version("d", V1, DISTRICT_FIRST + 7) == DISTRICT_FIRST + 7
    assert city.versions("d") == [1]
    replayed, _ = store_from(1)
    for key, value in log.entries:
        record = decode(key, value)
        assert record is not None
        replayed.state.apply(record)
    assert replayed.schema_by_id(DISTRICT_FIRST + 7) == V1.text
    assert replayed.register("f", person({"name": "y", "type": "long"})) == 3


def test_an_import_never_makes_an_id_mean_a_second_schema() -> None:
    city, _ = store_from(1)
    city.import_version("d", V1, DISTRICT_FIRST)
    with pytest.raises(ImportConflict):
        city.import_version("d", V2, DISTRICT_FIRST)
    with pytest.raises(ImportConflict):
        city.import_version("x", V2, 1)  # the city's own range: only the city hands those out
