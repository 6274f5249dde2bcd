"""What one database transaction of the sink applies, gathered before it is written (LandStore.apply)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sharebus_land.layout import Placement

Key = tuple[str, str]  # (table, data class)


@dataclass
class Unit:
    """What one database transaction applies: rows by (table, class) and key (None deletes), batches, offsets."""

    rows: dict[Key, dict[Any, dict[str, Any] | None]] = field(default_factory=dict)
    batches: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # Classes stopped by a record of this transaction: (state, reason), written with its rows and offsets.
    class_states: dict[str, tuple[str, str]] = field(default_factory=dict)
    landed: Counter[str] = field(default_factory=Counter)
    published_ns: dict[str, int] = field(default_factory=dict)  # per class, the latest publish time landed
    records: int = 0
    # One landing time per transaction: the rows of a transaction become visible together.
    landed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    # Per (table, class) and key, the end of the periodic window its row or tombstone came from (None: real time).
    windows: dict[Key, dict[Any, dt.datetime | None]] = field(default_factory=dict)
    # Per (table, class) and key, the window the database's row must not be newer than for this unit's row to
    # apply; None: it applies whatever the row holds (a real-time record, or a batch's row that replaced one of
    # this unit: one by one, the real-time record would have cleared the row's window first).
    guards: dict[Key, dict[Any, dt.datetime | None]] = field(default_factory=dict)

    def put(
        self,
        placement: Placement,
        key: Any,
        row: dict[str, Any] | None,
        published_ns: int | None = None,
        window: dt.datetime | None = None,
    ) -> bool:
        """False when ``key`` already holds a newer window's row in this transaction (nothing put)."""
        where = (placement.table, placement.data_class)
        windows, guards = self.windows.setdefault(where, {}), self.guards.setdefault(where, {})
        held = windows.get(key)
        if window is not None and held is not None and held > window:
            return False
        # Otherwise the last record of a key wins within a transaction, as it would have one by one.
        rows = self.rows.setdefault(where, {})
        guards[key] = window if key not in rows or (held is not None and guards[key] is not None) else None
        rows[key] = row
        windows[key] = window
        self.landed[placement.data_class] += 1
        self.records += 1
        if published_ns is not None and published_ns > self.published_ns.get(placement.data_class, 0):
            self.published_ns[placement.data_class] = published_ns
        return True

    def __bool__(self) -> bool:
        return bool(self.rows or self.batches or self.offsets or self.class_states)
