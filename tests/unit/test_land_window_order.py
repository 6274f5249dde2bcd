"""Periodic batches land as they complete, not in window order: an older window's batch must never
overwrite (or delete) a newer window's row of the same key, in one transaction or across several, and a
table landed before rows recorded their window gains the column (SQLite here; PostgreSQL in
tests/integration/test_land_postgres.py).

A batch's records are spread over partitions by record key while its end marker is keyed by its batch id,
so after downtime the reader can meet window 2's marker before window 1's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from sharebus_core.catalogue import Catalogue
from sharebus_land.layout import class_table
from sharebus_land.reader import Incoming, WriterSchema
from sharebus_sdk.batches import BatchInfo
from tests.unit.test_land import STATS, TOPIC, Feed, catalogue, db_url, drain, schema_of, sink  # noqa: F401

UTC8 = dt.timezone(dt.timedelta(hours=8))
# Window 1 ends at 00:00 UTC, written at +08:00 (08:00): as text it sorts after window 2's end.
OLD = BatchInfo("w1", dt.datetime(2026, 1, 1, 8, tzinfo=UTC8), dt.datetime(2026, 1, 2, 8, tzinfo=UTC8), 1, 0)
NEW = BatchInfo("w2", dt.datetime(2026, 1, 2, 0, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 1, tzinfo=dt.UTC), 1, 0)


def stats(issued: int) -> dict[str, Any]:
    return {"district_code": "D0", "issued": issued, "seq": issued}


def part(offset: int, info: BatchInfo, value: dict[str, Any] | None, schema: WriterSchema) -> Incoming:
    """A batch's record, keyed D0 (partition 0)."""
    return Incoming(STATS, "AMR", f"r{offset}", "g1", None, "D0", value, schema, (TOPIC, 0, offset), info)


def marker(partition: int, offset: int, info: BatchInfo) -> Incoming:
    """A batch's end marker, keyed by its batch id (another partition)."""
    end = BatchInfo(info.batch_id, info.period_start, info.period_end, info.count, None)
    return Incoming(STATS, "AMR", None, "g1", None, info.batch_id, None, None, (TOPIC, partition, offset), end)


def live(offset: int, value: dict[str, Any], schema: WriterSchema) -> Incoming:
    return Incoming(STATS, "AMR", f"r{offset}", "g1", None, "D0", value, schema, (TOPIC, 0, offset), None)


def landed(s: Any) -> list[int]:
    return [r["seq"] for r in s.store.rows(class_table(STATS))]


def test_an_older_window_completing_later_in_one_transaction_does_not_overwrite_the_newer(
    db_url: str,  # noqa: F811
    catalogue: Catalogue,  # noqa: F811
) -> None:
    schema = schema_of(catalogue, STATS, 1)
    s, reader = sink(db_url, catalogue, Feed())
    reader.items += [part(0, OLD, stats(1), schema), part(1, NEW, stats(2), schema), marker(1, 0, NEW)]
    reader.items += [marker(2, 0, OLD)]
    drain(s)
    assert landed(s) == [2]
    s.close()


def test_an_older_window_landing_in_a_later_transaction_neither_overwrites_nor_deletes_the_newer(
    db_url: str,  # noqa: F811
    catalogue: Catalogue,  # noqa: F811
) -> None:
    schema = schema_of(catalogue, STATS, 1)
    s, reader = sink(db_url, catalogue, Feed())
    reader.items += [part(0, OLD, stats(1), schema), part(1, NEW, stats(2), schema), marker(1, 0, NEW)]
    drain(s)  # window 2 committed; window 1's part is still open
    assert landed(s) == [2]
    reader.items += [marker(2, 0, OLD)]
    drain(s)
    assert landed(s) == [2]
    period_end = s.store.rows(class_table(STATS))[0]["_period_end"]
    assert period_end is not None
    # An older window's tombstone of the key deletes nothing newer either.
    tomb = BatchInfo("w0", OLD.period_start - dt.timedelta(days=1), OLD.period_start, 1, 0)
    reader.items += [part(2, tomb, None, schema), marker(2, 1, tomb)]
    drain(s)
    assert landed(s) == [2]
    # A real-time record is the latest version whatever the windows; a later window applies after it.
    reader.items += [live(3, stats(3), schema)]
    drain(s)
    assert landed(s) == [3]
    later = BatchInfo("w3", NEW.period_end, NEW.period_end + dt.timedelta(hours=1), 1, 0)
    reader.items += [part(4, later, stats(4), schema), marker(1, 1, later)]
    drain(s)
    assert landed(s) == [4]
    s.close()


def test_a_table_landed_before_rows_recorded_their_window_gains_the_column(
    db_url: str,  # noqa: F811
    catalogue: Catalogue,  # noqa: F811
) -> None:
    schema = schema_of(catalogue, STATS, 1)
    s, reader = sink(db_url, catalogue, Feed())
    reader.items += [live(0, stats(0), schema)]
    drain(s)
    s.close()
    # The previous version's database: the table and sharebus_columns without the window column.
    engine = sa.create_engine(s.store.engine.url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {class_table(STATS)} DROP COLUMN _period_end"))
        conn.execute(sa.text("DELETE FROM sharebus_columns WHERE column_name = '_period_end'"))
    engine.dispose()
    s, reader = sink(db_url, catalogue, Feed())
    reader.items += [part(1, NEW, stats(2), schema), marker(1, 0, NEW)]
    drain(s)
    reader.items += [part(2, OLD, stats(1), schema), marker(2, 0, OLD)]
    drain(s)
    assert landed(s) == [2]
    s.close()


def test_one_transaction_ends_as_its_records_would_one_by_one_when_real_time_and_batches_mix(
    db_url: str,  # noqa: F811
    catalogue: Catalogue,  # noqa: F811
) -> None:
    """A real-time record clears the row's window, so an older window's row after it (in the same
    transaction) applies, as it would have one record per transaction, whatever window the row held before."""
    schema = schema_of(catalogue, STATS, 1)
    s, reader = sink(db_url, catalogue, Feed())
    reader.items += [part(0, NEW, stats(2), schema), marker(1, 0, NEW)]
    drain(s)
    reader.items += [live(1, stats(3), schema), part(2, OLD, stats(1), schema), marker(2, 0, OLD)]
    assert s.step() == 3
    assert landed(s) == [1]
    s.close()


def test_a_tombstone_before_a_class_has_a_table_deletes_nothing_and_moves_the_offsets(
    db_url: str,  # noqa: F811
    catalogue: Catalogue,  # noqa: F811
) -> None:
    """A class's first record here is a tombstone (its rows were landed elsewhere, or never): nothing to delete.
    It failed the sink's step with a KeyError, again at every restart."""
    s, reader = sink(db_url, catalogue, Feed())
    reader.items += [Incoming(STATS, "AMR", "r0", "g1", None, "D0", None, None, (TOPIC, 0, 0), None)]
    drain(s)
    assert s.store.rows("sharebus_offsets") == [{"topic": TOPIC, "kafka_partition": 0, "next_offset": 1}]
    reader.items += [live(1, stats(3), schema_of(catalogue, STATS, 1))]
    drain(s)
    assert landed(s) == [3]
    s.close()
