"""The consumer's database, through SQLAlchemy Core: SQLite by default, PostgreSQL with psycopg.

Besides one table per class (or per theme), the sink keeps four tables of its own:

- ``sharebus_offsets``: per delivery-topic partition, the next offset to read. It is written in the
  same transaction as the rows that offset covers, so the database and its position never disagree:
  on start the sink reads from here, never from a consumer group;
- ``sharebus_columns``: every landed column and its kind (the schema the table follows);
- ``sharebus_batches``: every periodic batch landed (its window, its count, when);
- ``sharebus_classes``: classes stopped by an incompatible schema, or whose grant was revoked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from sharebus_land.errors import DatabaseUrlInvalid, LandError
from sharebus_land.layout import Placement
from sharebus_land.shapes import GRANT_ID, LANDED_AT, PERIOD_END, PROVIDER, RECORD_ID, ClassShape, evolve
from sharebus_land.unit import Unit

# Unit lived here before it had a module of its own; tests and tools still import it from here.
__all__ = ["LandStore", "StoredState", "Unit", "control_tables", "engine_url"]

_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "text": sa.Text,
    "bigint": sa.BigInteger,
    "double": sa.Double,
    "bool": sa.Boolean,
    "bytes": sa.LargeBinary,
    "date": sa.Date,
    "timestamp": lambda: sa.DateTime(timezone=True),
    "numeric": sa.Numeric,
    "json": sa.JSON,
}
# A table landed by an earlier version gains a missing one (PERIOD_END) as any new column: added by ``ensure``
# before the first row of the class this process lands.
META_KINDS = {RECORD_ID: "text", PROVIDER: "text", GRANT_ID: "text", LANDED_AT: "timestamp", PERIOD_END: "timestamp"}
_URL_FORMS = "use sqlite:///path/to/file.db or postgresql://user@host:port/database"


def engine_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (SQLAlchemy's default PostgreSQL driver is psycopg2)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def control_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    return {
        "offsets": sa.Table(
            "sharebus_offsets",
            metadata,
            sa.Column("topic", sa.Text, primary_key=True),
            sa.Column("kafka_partition", sa.Integer, primary_key=True),
            sa.Column("next_offset", sa.BigInteger, nullable=False),
        ),
        "columns": sa.Table(
            "sharebus_columns",
            metadata,
            sa.Column("table_name", sa.Text, primary_key=True),
            sa.Column("column_name", sa.Text, primary_key=True),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("data_class", sa.Text, nullable=False),
            sa.Column("is_key", sa.Boolean, nullable=False),
        ),
        "batches": sa.Table(
            "sharebus_batches",
            metadata,
            sa.Column("batch_id", sa.Text, primary_key=True),
            sa.Column("data_class", sa.Text, nullable=False),
            sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
            sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
            sa.Column("records", sa.Integer, nullable=False),
            sa.Column("landed_at", sa.DateTime(timezone=True), nullable=False),
        ),
        "classes": sa.Table(
            "sharebus_classes",
            metadata,
            sa.Column("data_class", sa.Text, primary_key=True),
            sa.Column("state", sa.Text, nullable=False),  # stopped | revoked
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        ),
    }


@dataclass(frozen=True)
class StoredState:
    offsets: dict[tuple[str, int], int]
    batches: set[str]
    classes: dict[str, tuple[str, str]]  # class -> (state, reason)


class LandStore:
    def __init__(self, url: str) -> None:
        try:
            self.engine: Engine = sa.create_engine(engine_url(url))
        except sa.exc.ArgumentError as exc:  # NoSuchModuleError too: an unknown scheme or driver
            raise DatabaseUrlInvalid(f"not a database URL the sink can use ({exc}); {_URL_FORMS}") from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        self.metadata = sa.MetaData()
        self.control = control_tables(self.metadata)
        self._tables: dict[str, sa.Table] = {}
        self._kinds: dict[str, dict[str, str]] = {}  # table -> column -> kind
        self._owner: dict[str, dict[str, str]] = {}  # table -> column -> class
        self._placements: dict[str, Placement] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read_columns(self) -> None:
        """What the tables hold now, without creating anything (``--plan``)."""
        with self._connected() as conn:
            if sa.inspect(conn).has_table("sharebus_columns"):
                self._remember_all(conn.execute(sa.select(self.control["columns"])).all())

    def pretend(self, placement: Placement, shape: ClassShape) -> None:
        """Remembers ``shape``'s columns as if ``ensure`` had run (``--plan`` of several classes)."""
        for c, k, is_key in self.changes(placement, shape):
            self._remember(placement.table, c, k, placement.data_class, is_key)

    def _remember_all(self, columns: Iterable[Any]) -> None:
        for row in sorted(columns, key=lambda r: (not r.is_key, r.table_name)):
            self._remember(row.table_name, row.column_name, row.kind, row.data_class, row.is_key)

    def open(self) -> StoredState:
        """Creates the sink's own tables when missing; reads back what was landed so far."""
        with self._connected() as conn:
            self.metadata.create_all(conn, tables=list(self.control.values()))
            columns = conn.execute(sa.select(self.control["columns"])).all()
            offsets = {
                (r.topic, r.kafka_partition): r.next_offset for r in conn.execute(sa.select(self.control["offsets"]))
            }
            batches = {r.batch_id for r in conn.execute(sa.select(self.control["batches"].c.batch_id))}
            classes = {r.data_class: (r.state, r.reason) for r in conn.execute(sa.select(self.control["classes"]))}
        self._remember_all(columns)
        return StoredState(offsets, batches, classes)

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Connection]:
        """A transaction; a database that cannot be reached at all is a ``LandError`` naming it (no password)."""
        try:
            conn = self.engine.connect()
        except sa.exc.OperationalError as exc:
            where = self.engine.url.render_as_string(hide_password=True)
            raise LandError(f"cannot open the database {where}: {exc.orig}") from exc
        with conn, conn.begin():
            yield conn

    def register(self, placements: Iterable[Placement]) -> None:
        for placement in placements:
            self._placements[placement.data_class] = placement

    def _remember(self, table_name: str, column: str, kind: str, data_class: str, is_key: bool) -> None:
        table = self._tables.get(table_name)
        if table is None:
            table = self._tables[table_name] = sa.Table(table_name, sa.MetaData())
        table.append_column(sa.Column(column, _TYPES[kind](), primary_key=is_key))
        self._kinds.setdefault(table_name, {})[column] = kind
        self._owner.setdefault(table_name, {})[column] = data_class

    def changes(self, placement: Placement, shape: ClassShape) -> list[tuple[str, str, bool]]:
        """(column, kind, is key) to add for ``shape``; ``IncompatibleSchema`` when a column cannot follow."""
        wanted = [(placement.column(name), kind) for name, kind in shape.fields]
        wanted += [(placement.column(name), kind) for name, kind in META_KINDS.items()]
        landed = self._kinds.get(placement.table, {})
        what = f"class {placement.data_class} (table {placement.table})"
        key = evolve(landed, [(placement.key_column, shape.key_kind)], what)
        return [(c, k, True) for c, k in key if not landed] + [(c, k, False) for c, k in evolve(landed, wanted, what)]

    def ddl(self, placement: Placement, shape: ClassShape) -> list[str]:
        """The DDL ``ensure`` would run, compiled for this database (``sharebus land --plan``)."""
        return [str(stmt.compile(dialect=self.engine.dialect)).strip() for stmt in self._ddl(placement, shape)[0]]

    def _ddl(self, placement: Placement, shape: ClassShape) -> tuple[list[Any], list[tuple[str, str, bool]]]:
        adds = self.changes(placement, shape)
        if not adds:
            return [], adds
        if placement.table not in self._tables:
            columns = [sa.Column(c, _TYPES[k](), primary_key=is_key) for c, k, is_key in adds]
            return [sa.schema.CreateTable(sa.Table(placement.table, sa.MetaData(), *columns))], adds
        table = self._tables[placement.table]
        statements = [sa.text(self._add_column(table, sa.Column(c, _TYPES[k]()))) for c, k, _ in adds]
        return statements, adds

    def _add_column(self, table: sa.Table, column: sa.Column[Any]) -> str:
        # SQLAlchemy Core has no ADD COLUMN construct; the dialect's own quoting and type compiler make it.
        preparer = self.engine.dialect.identifier_preparer
        kind = column.type.compile(dialect=self.engine.dialect)
        return f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.quote(column.name)} {kind}"

    def ensure(self, placement: Placement, shape: ClassShape) -> list[str]:
        """Creates or widens the class's table for a delivered schema, in a transaction of its own.

        Run before the rows that need it are applied: a table that gained a column ahead of a crash
        is harmless, rows without their column would not be.
        """
        statements, adds = self._ddl(placement, shape)
        self._placements[placement.data_class] = placement
        if not adds:
            return []
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                sa.insert(self.control["columns"]),
                [
                    {
                        "table_name": placement.table,
                        "column_name": c,
                        "kind": k,
                        "data_class": placement.data_class,
                        "is_key": is_key,
                    }
                    for c, k, is_key in adds
                ],
            )
        for c, k, is_key in adds:
            self._remember(placement.table, c, k, placement.data_class, is_key)
        return [str(s.compile(dialect=self.engine.dialect)).strip() for s in statements]

    def set_class_state(self, data_class: str, state: str | None, reason: str = "") -> None:
        with self.engine.begin() as conn:
            self._set_class_state(conn, data_class, state, reason)

    def _set_class_state(self, conn: Connection, data_class: str, state: str | None, reason: str) -> None:
        table = self.control["classes"]
        conn.execute(sa.delete(table).where(table.c.data_class == data_class))
        if state is not None:
            now = dt.datetime.now(dt.UTC)
            conn.execute(sa.insert(table).values(data_class=data_class, state=state, reason=reason, since=now))

    def apply(self, unit: Unit) -> None:
        """One transaction: the rows, the batches and the offsets they came from, or none of them.

        Order: rows first, then batches and class states, then the offsets, then COMMIT. Kafka's own
        committed offsets play no part.
        """
        with self.engine.begin() as conn:
            for (table, data_class), rows in unit.rows.items():
                self._apply_rows(conn, self._placements[data_class], rows, unit.guards.get((table, data_class), {}))
            if unit.batches:
                conn.execute(sa.insert(self.control["batches"]), unit.batches)
            for data_class, (state, reason) in unit.class_states.items():
                self._set_class_state(conn, data_class, state, reason)
            if unit.offsets:
                self._upsert(
                    conn,
                    self.control["offsets"],
                    ["topic", "kafka_partition"],
                    [{"topic": t, "kafka_partition": p, "next_offset": o} for (t, p), o in unit.offsets.items()],
                )

    def _apply_rows(
        self,
        conn: Connection,
        placement: Placement,
        rows: Mapping[Any, dict[str, Any] | None],
        windows: Mapping[Any, dt.datetime | None],
    ) -> None:
        """Upserts and deletes by key. A periodic window's row or tombstone applies only where the key's row
        holds no newer window's than ``windows`` gives (batches land as they complete, not in window order); a
        real-time record's (no window given) always does, as the last record of a key wins."""
        table = self._tables.get(placement.table)
        if table is None:
            # Only tombstones come before a class's first row (its table is made for a row): nothing landed
            # here to delete. Raising would fail the step again at every restart.
            if any(row is not None for row in rows.values()):
                raise LandError(f"no table {placement.table} for the rows of {placement.data_class}")
            return
        key = placement.key_column
        period_end = placement.column(PERIOD_END)
        # A table an earlier version landed has no window column until ``ensure`` adds it: no window to keep.
        guarded = period_end in table.c
        upserts: list[dict[str, Any]] = []
        windowed: list[dict[str, Any]] = []
        for k, row in rows.items():
            if row is not None:
                (windowed if guarded and windows.get(k) is not None else upserts).append({**row, key: k})
        if upserts:
            self._upsert(conn, table, [key], upserts)
        if windowed:
            self._upsert(conn, table, [key], windowed, period_end)
        gone = [{"_k": k, **({"_w": windows.get(k)} if guarded else {})} for k, row in rows.items() if row is None]
        if gone:
            where = table.c[key] == sa.bindparam("_k")
            if guarded:
                newer = table.c[period_end] > sa.bindparam("_w", type_=table.c[period_end].type)
                where = sa.and_(where, sa.not_(sa.func.coalesce(newer, False)))
            if placement.shared:
                cleared = {c: None for c in self._class_columns(placement)}
                conn.execute(sa.update(table).where(where).values(cleared), gone)
            else:
                conn.execute(sa.delete(table).where(where), gone)

    def _class_columns(self, placement: Placement) -> list[str]:
        owners = self._owner.get(placement.table, {})
        return [c for c, owner in owners.items() if owner == placement.data_class and c != placement.key_column]

    def _upsert(
        self, conn: Connection, table: sa.Table, keys: list[str], rows: list[dict[str, Any]], window: str | None = None
    ) -> None:
        """``window``: the column of the rows' periodic window; a row then replaces only one of no newer window."""
        # Rows of one executemany need the same columns: a column a row's schema lacked lands as NULL.
        first = rows[0].keys()
        if all(row.keys() == first for row in rows):
            columns, padded = list(first), rows
        else:
            columns = sorted(set().union(*rows))
            padded = [{c: row.get(c) for c in columns} for row in rows]
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        updates = {c: insert.excluded[c] for c in columns if c not in keys}
        older = None
        if window is not None:
            older = sa.or_(table.c[window].is_(None), table.c[window] <= insert.excluded[window])
        statement = (
            insert.on_conflict_do_update(index_elements=keys, set_=updates, where=older)
            if updates
            else insert.on_conflict_do_nothing()
        )
        conn.execute(statement, padded)

    def purge_class(self, data_class: str) -> int:
        """Removes what a class landed (its grant was revoked and the setting says purge); returns rows touched."""
        placement = self._placements.get(data_class)
        if placement is None or placement.table not in self._tables:
            return 0
        table = self._tables[placement.table]
        with self.engine.begin() as conn:
            if placement.shared:
                cleared = {c: None for c in self._class_columns(placement)}
                return conn.execute(sa.update(table).values(cleared)).rowcount
            return conn.execute(sa.delete(table)).rowcount

    def count_tables(self) -> int:
        return len(sa.inspect(self.engine).get_table_names())

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one())

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(sa.text("*")).select_from(sa.table(table)))]

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers see the last committed transaction while the sink writes the next; FULL
    # makes a commit durable before it returns (an acknowledged offset must survive a power cut).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()
    # Python's sqlite3 opens a transaction only before an INSERT, UPDATE or DELETE, so a CREATE TABLE or
    # ALTER TABLE ran on its own and stayed when the sink was killed before the rows recording it were
    # committed: the restarted sink then failed on "table already exists" for good. The driver leaves
    # transactions alone, and each of SQLAlchemy's begins one (_sqlite_begin), DDL included.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")
