"""The highest id a registry issued survives compaction, so a restart never hands a deleted id out again.

Finding: ``_max_id`` was rebuilt from what compaction left of ``<ns>._schemas``. After a permanent delete of
the newest id, compaction past ``delete.retention.ms`` removed its records and tombstones alike, and a
restarted registry gave that id to another schema, while records on topics still carried it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sharebus_registry.records import HighWaterKey, HighWaterValue, Record, decode, encode
from sharebus_registry.state import ID_SPAN, RegistryState
from sharebus_registry.store import SchemaStore
from tests.unit.registry.memory_log import MemoryLog
from tests.unit.registry.test_store import V1, person

Entries = list[tuple[bytes, bytes | None]]


def compacted(entries: Entries) -> Entries:
    """What Kafka keeps of a compacted topic once delete.retention.ms has passed: each key's last value,
    in the order of those last records, tombstones gone."""
    last: dict[bytes, bytes | None] = {}
    for key, value in entries:
        last.pop(key, None)
        last[key] = value
    return [(key, value) for key, value in last.items() if value is not None]


def restarted(entries: Entries, first_id: int = 1) -> SchemaStore:
    """A registry process started on ``entries``: its state is what reading them rebuilds."""
    state = RegistryState(first_id)
    for key, value in entries:
        record = decode(key, value)
        assert record is not None
        state.apply(record)
    return SchemaStore(state, MemoryLog(state))


def delete_subject(store: SchemaStore) -> None:
    store.delete_subject("gone")
    store.delete_subject("gone", permanent=True)


def delete_version(store: SchemaStore) -> None:
    store.delete_version("gone", 1)
    store.delete_version("gone", 1, permanent=True)


@pytest.mark.parametrize("delete", [delete_subject, delete_version])
def test_a_permanently_deleted_newest_id_is_not_reissued_after_compaction_and_a_restart(
    delete: Callable[[SchemaStore], None],
) -> None:
    state = RegistryState(1)
    log = MemoryLog(state)
    store = SchemaStore(state, log)
    store.register("keep", person({"name": "k", "type": "int"}))
    gone = store.register("gone", V1)  # records on topics carry this id
    delete(store)

    again = restarted(compacted(log.entries))
    assert again.schema_by_id(1)  # what is kept is still there
    assert again.register("other", person({"name": "z", "type": "long"})) == gone + 1


def test_the_kept_high_water_is_the_highest_ever_and_one_key_for_compaction() -> None:
    state = RegistryState(1)
    log = MemoryLog(state)
    store = SchemaStore(state, log)
    store.register("a", V1)  # 1
    store.register("b", person({"name": "b", "type": "int"}))  # 2
    store.delete_subject("b")
    store.delete_subject("b", permanent=True)  # writes 2
    store.register("c", person({"name": "c", "type": "int"}))  # 3
    store.delete_subject("c")
    store.delete_subject("c", permanent=True)  # writes 3 under the same key: compaction keeps that one
    high = [decode(key, value) for key, value in compacted(log.entries) if key == encode_high_water_key()]
    assert high == [Record(HighWaterKey(), HighWaterValue(3))]
    assert restarted(compacted(log.entries)).register("d", person({"name": "d", "type": "int"})) == 4


def test_a_permanent_delete_below_the_recorded_high_water_writes_no_other() -> None:
    state = RegistryState(1)
    log = MemoryLog(state)
    store = SchemaStore(state, log)
    store.register("a", V1)
    store.register("b", person({"name": "b", "type": "int"}))
    store.delete_subject("b")
    store.delete_subject("b", permanent=True)
    written = len(log.entries)
    store.delete_subject("a")
    store.delete_subject("a", permanent=True)
    assert [key for key, _ in log.entries[written:]].count(encode_high_water_key()) == 0


def test_another_ranges_high_water_does_not_move_the_own_counter() -> None:
    entries = [encode(Record(HighWaterKey(), HighWaterValue(1 + ID_SPAN + 41)))]
    assert restarted(entries, first_id=1).register("a", V1) == 1
    assert restarted(entries, first_id=1 + ID_SPAN).register("a", V1) == 1 + ID_SPAN + 42


def encode_high_water_key() -> bytes:
    return encode(Record(HighWaterKey(), HighWaterValue(0)))[0]
