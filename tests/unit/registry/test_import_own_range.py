"""An import of an id of the receiver's own range is taken when the receiver issued it for that very schema.

Finding: a district class granted through the city, all fields unmasked, to a system of the same district
comes back down as a city projection with the district's own id (same canonical schema). The district
refused that import ("in this registry's own range") though it holds that very id for that very schema.
"""

from __future__ import annotations

import json

import pytest

from sharebus_registry.errors import ImportConflict
from sharebus_registry.schemas import parse
from sharebus_registry.state import ID_SPAN, RegistryState
from sharebus_registry.store import SchemaStore
from tests.unit.registry.memory_log import MemoryLog
from tests.unit.registry.test_store import V1, V2

DISTRICT_FIRST = 1 + ID_SPAN
OWN_CLASS = "sharebus.src.301002001.000001-value"
PROJECTION = "sharebus.dlv.yb-tax.301002001.000001-value"


def district() -> SchemaStore:
    state = RegistryState(DISTRICT_FIRST)
    return SchemaStore(state, MemoryLog(state))


def test_an_own_id_coming_back_for_the_same_schema_registers_the_subject_with_it() -> None:
    store = district()
    own = store.register(OWN_CLASS, V1)
    # The same schema as the city sends it: another layout, the same canonical form.
    relaid = parse(json.dumps(json.loads(V1.text), indent=2))
    assert store.import_version(PROJECTION, relaid, own) == own
    assert store.versions(PROJECTION) == [1]
    assert store.get_version(PROJECTION, 1).schema_id == own
    assert store.schema_by_id(own) == V1.text  # one id, one text
    assert store.import_version(PROJECTION, V1, own) == own  # again: a no-op
    assert store.versions(PROJECTION) == [1]
    assert store.register("sharebus.src.other-value", V2) == own + 1  # the counter is where it was


def test_an_own_id_is_still_refused_for_another_schema_or_when_not_held() -> None:
    store = district()
    own = store.register(OWN_CLASS, V1)
    with pytest.raises(ImportConflict, match="another schema"):
        store.import_version(PROJECTION, V2, own)
    with pytest.raises(ImportConflict, match="own range"):
        store.import_version(PROJECTION, V2, own + 1)  # only this registry hands its ids out
    store.delete_subject(OWN_CLASS)
    store.delete_subject(OWN_CLASS, permanent=True)
    with pytest.raises(ImportConflict, match="own range"):
        store.import_version(PROJECTION, V1, own)  # no longer held: deleted for good, not brought back
    assert store.subjects(include_deleted=True) == []
