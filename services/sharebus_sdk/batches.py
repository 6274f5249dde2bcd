"""Periodic batches as a unit: records and the end marker are gathered until the batch is whole.

A batch is whole when its end marker has arrived and it holds ``count`` distinct records (by
index), whatever partitions they came through. A batch released again after a router crash has
the same id: its records fill the same slots and a completed batch is not handed out twice.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sharebus_core import headers as h

# The slot of a batch record that could not be decoded (handed to the Subscriber's ``on_error``).
SKIPPED: Any = object()


@dataclass(frozen=True, slots=True)
class BatchInfo:
    batch_id: str
    period_start: dt.datetime
    period_end: dt.datetime
    count: int
    seq: int | None  # None on the end marker

    @classmethod
    def from_headers(cls, meta: Mapping[str, bytes]) -> BatchInfo | None:
        batch = h.text(meta, h.BATCH_ID)
        if batch is None:
            return None
        seq = h.text(meta, h.BATCH_SEQ)
        return cls(
            batch_id=batch,
            period_start=dt.datetime.fromisoformat(h.text(meta, h.BATCH_START) or ""),
            period_end=dt.datetime.fromisoformat(h.text(meta, h.BATCH_END_TIME) or ""),
            count=int(h.text(meta, h.BATCH_COUNT) or "0"),
            seq=int(seq) if seq is not None and h.BATCH_END not in meta else None,
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """One released window of a periodic class, whole, records in their batch order."""

    batch_id: str
    data_class: str
    provider: str
    consumer: str
    period_start: dt.datetime
    period_end: dt.datetime
    records: tuple[Any, ...]  # Delivery; Any to keep this module free of the subscriber
    # Batch indexes of records that could not be decoded (skipped, given to the error callback).
    skipped: tuple[int, ...] = ()
    # Batch indexes of records left out as repeats of records handed out before (the Subscriber's
    # dedupe: the same record id of the same class, e.g. held twice by a router that crashed).
    repeats: tuple[int, ...] = ()


@dataclass
class _Partial:
    info: BatchInfo
    data_class: str = ""
    provider: str = ""
    consumer: str = ""
    ended: bool = False
    records: dict[int, Any] = field(default_factory=dict)
    # (topic, partition, offset) of every message of the batch, released together when it is handed out.
    positions: list[tuple[str, int, int]] = field(default_factory=list)


class BatchAssembler:
    def __init__(self, remember_completed: int = 10_000) -> None:
        self._partials: dict[str, _Partial] = {}
        self._completed: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_completed

    def is_completed(self, batch_id: str) -> bool:
        return batch_id in self._completed

    def add(
        self,
        info: BatchInfo,
        position: tuple[str, int, int],
        record: Any | None,
        data_class: str,
        provider: str,
        consumer: str,
    ) -> tuple[Batch, list[tuple[str, int, int]]] | None:
        """Adds a record (or the end marker, ``record`` None); returns the batch and its positions once whole."""
        partial = self._partials.get(info.batch_id)
        if partial is None:
            partial = self._partials[info.batch_id] = _Partial(info, data_class, provider, consumer)
        partial.positions.append(position)
        if info.seq is None:
            partial.ended = True
        elif record is not None:
            partial.records.setdefault(info.seq, record)
        if not partial.ended or len(partial.records) < info.count:
            return None
        del self._partials[info.batch_id]
        self._completed[info.batch_id] = None
        if len(self._completed) > self._remember:
            self._completed.popitem(last=False)
        batch = Batch(
            batch_id=info.batch_id,
            data_class=partial.data_class,
            provider=partial.provider,
            consumer=partial.consumer,
            period_start=info.period_start,
            period_end=info.period_end,
            records=tuple(
                partial.records[seq] for seq in sorted(partial.records) if partial.records[seq] is not SKIPPED
            ),
            skipped=tuple(seq for seq in sorted(partial.records) if partial.records[seq] is SKIPPED),
        )
        return batch, partial.positions

    @property
    def pending(self) -> int:
        return len(self._partials)
