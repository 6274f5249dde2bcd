"""An in-memory stand-in for the Kafka log, for tests of everything above it.

It encodes and decodes every record and applies it to the state before ``append`` returns, as the
Kafka log does once its reader has caught up.
"""

from __future__ import annotations

from collections.abc import Sequence

from sharebus_registry.records import Record, decode, encode
from sharebus_registry.state import RegistryState
from sharebus_registry.store import SchemaStore


class MemoryLog:
    def __init__(self, state: RegistryState) -> None:
        self.state = state
        self.entries: list[tuple[bytes, bytes | None]] = []

    def append(self, records: Sequence[Record]) -> None:
        for record in records:
            self.entries.append(encode(record))
            decoded = decode(*self.entries[-1])
            assert decoded is not None
            self.state.apply(decoded)


def make_store() -> tuple[SchemaStore, MemoryLog]:
    state = RegistryState()
    log = MemoryLog(state)
    return SchemaStore(state, log), log
