"""Who received which record: an on-disk index of the audit trail's deliveries, kept by following it.

Only a system that received a record may dispute it, and the audit trail is the proof: every delivery
is an audit event with ``record_id``, ``consumer`` and ``decision: deliver``. Reading the trail on a
request is out of the question (it is kept forever: at 7.46 million records a day it holds billions of
events), so a follower thread reads it once, in order, committed events only, and keeps one row per
(record id, consumer, class) in SQLite. The index's read positions are stored in the same SQLite
transaction as its rows, so a restart resumes where it stopped, nothing twice and nothing lost; the
file is a cache of the log, and deleting it costs one re-read of the trail. Memory stays flat: rows
live on disk (about 120 bytes each, some 1.2 GB per city-scale day of deliveries).

A delivery withdrawn later in the trail (``withdraw``: a retried periodic release withheld the batch, the
grant having been revoked or having expired since its facts; ``sharebus_audit.withdrawals``) was never made
and proves no receipt. So each row keeps the deliveries it rests on (``bases``: a short digest of each
delivery's withdrawal key, ``*`` for one that nothing can withdraw, such as a backfill's), a withdrawal
takes its own away, and a row left resting on none is deleted: the system did not receive the record. A
row indexed before withdrawals were understood rests on ``?`` (its delivery unknown), which a withdrawal of
the same record id, consumer and class takes as the delivery it withdraws.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from sharebus_audit.withdrawals import DELIVER, WITHDRAW, withdrawal_key
from sharebus_core.audit_trail import decode_record, events_of
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess

log = logging.getLogger(__name__)

# One row per (record id, consumer, class): record ids are unique within a class only (each provider
# chooses its own), so one system may receive ``r-1`` of two classes, and each is its own receipt.
# Tables of their own (``receipts``, ``receipt_positions``): an index file made when the key was
# (record id, consumer) kept only the first of such receipts, so it is read again from the start.
# ``bases``: the deliveries the row rests on, space-separated (``delivery_basis``); added to a file made
# before it (``_BASES``), whose rows rest on ``?``.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    record_id TEXT NOT NULL, consumer TEXT NOT NULL, data_class TEXT NOT NULL, provider TEXT, delivered_at TEXT,
    bases TEXT NOT NULL DEFAULT '?',
    PRIMARY KEY (record_id, consumer, data_class)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipt_positions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


class IndexBehind(SharebusError, RuntimeError):
    """The index has not caught up with the audit trail's end in time: the answer is unknown, not "no"."""


@dataclass(frozen=True, slots=True)
class Receipt:
    record_id: str
    consumer: str
    data_class: str | None
    provider: str | None
    delivered_at: str | None


_BASES = "ALTER TABLE receipts ADD COLUMN bases TEXT NOT NULL DEFAULT '?'"

# A delivery no withdrawal can undo (it names no origin); ``?``: a row's delivery indexed before ``bases``.
LASTING = "*"
UNKNOWN_BASIS = "?"

# One delivery: more rows of a (record id, consumer, class) are kept once, in their ``bases``.
_DELIVERED = """
INSERT INTO receipts (record_id, consumer, data_class, provider, delivered_at, bases) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (record_id, consumer, data_class) DO UPDATE SET bases = bases || ' ' || excluded.bases
WHERE instr(' ' || bases || ' ', ' ' || excluded.bases || ' ') = 0
"""
# One withdrawal: its delivery (and one of unknown basis) taken from the row, a row resting on none deleted.
_WITHDRAWN = """
UPDATE receipts SET bases = trim(replace(replace(' ' || bases || ' ', ' ' || ? || ' ', ' '), ' ? ', ' '))
WHERE record_id = ? AND consumer = ? AND data_class = ?
"""
_UNSUPPORTED = "DELETE FROM receipts WHERE record_id = ? AND consumer = ? AND data_class = ? AND bases = ''"

Row = tuple[str, str, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Delivered:
    """A delivery's row and its basis (``delivery_basis``): which withdrawal, if any, undoes it."""

    row: Row
    basis: str


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A withdrawal: the delivery of ``basis`` to ``consumer`` of the record (id, class) was never made."""

    record_id: str
    consumer: str
    data_class: str
    basis: str


# What one audit event changes in the index, in the trail's order. A bare ``Row`` is a delivery that
# nothing withdraws (``LASTING``).
Change = Row | Delivered | Withdrawn


def delivery_basis(partition: int, event: Any) -> str:
    """A short digest of the event's withdrawal key (audit partition, mode, backfill, origin, consumer,
    grant): the same for a delivery and the withdrawals that undo it. ``LASTING`` for one without an origin."""
    key = withdrawal_key(partition, event) if isinstance(event, dict) else None
    if key is None:
        return LASTING
    return hashlib.blake2b(repr(key).encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def _row(event: Any, decision: str) -> Row | None:
    if not isinstance(event, dict) or event.get("decision") != decision:
        return None
    record_id, consumer = event.get("record_id"), event.get("consumer")
    if not isinstance(record_id, str) or not isinstance(consumer, str):
        return None

    def text(name: str) -> str | None:
        value = event.get(name)
        return value if isinstance(value, str) else None

    # "" for a delivery that names no class (the key needs a value): it matches no class named in a claim.
    return record_id, consumer, text("data_class") or "", text("provider"), text("time")


def delivery_row(event: Any) -> Row | None:
    """The index row of one audit event: deliveries with a record id only."""
    return _row(event, DELIVER)


def index_change(partition: int, event: Any) -> Change | None:
    """What one audit event, read from audit ``partition``, changes in the index: a delivery with its
    basis, a withdrawal of one, or nothing."""
    delivered = _row(event, DELIVER)
    if delivered is not None:
        return Delivered(delivered, delivery_basis(partition, event))
    withdrawn = _row(event, WITHDRAW)
    if withdrawn is None or withdrawal_key(partition, event) is None:
        return None
    record_id, consumer, data_class, _provider, _time = withdrawn
    return Withdrawn(record_id, consumer, data_class or "", delivery_basis(partition, event))


class DeliveryIndex:
    def __init__(
        self,
        access: KafkaAccess,
        topic: str,
        path: Path,
        batch: int = 2000,
        on_indexed: Callable[[int], None] | None = None,
    ) -> None:
        self.on_indexed = on_indexed
        self.access = access
        self.topic = topic
        self.batch = batch
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {str(row[1]) for row in self._db.execute("PRAGMA table_info(receipts)")}
        if "bases" not in columns:
            self._db.execute(_BASES)
        self._lock = threading.Lock()
        # The probe waits on the network: it must never hold the lock the follower commits under.
        self._probe_lock = threading.Lock()
        rows = self._db.execute("SELECT partition, next_offset FROM receipt_positions WHERE topic = ?", (topic,))
        self._positions: dict[int, int] = {int(p): int(o) for p, o in rows}
        self._probe: Consumer | None = None
        self.caught_up = threading.Event()
        self.indexed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="delivery-index", daemon=True)

    # -- queries (request threads) ------------------------------------------------------------

    def receipts(self, record_id: str) -> list[Receipt]:
        """Every delivery of ``record_id`` the index holds, by consumer."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id, consumer, data_class, provider, delivered_at FROM receipts "
                "WHERE record_id = ? ORDER BY consumer, data_class",
                (record_id,),
            ).fetchall()
        return [Receipt(*row) for row in rows]

    def receipt(self, record_id: str, consumer: str) -> Receipt | None:
        return next((r for r in self.receipts(record_id) if r.consumer == consumer), None)

    def positions(self) -> dict[int, int]:
        with self._lock:
            return dict(self._positions)

    def wait_current(self, timeout_s: float) -> bool:
        """Waits until the index holds every audit event committed before this call; False on time-out."""
        ends = self._ends()
        deadline = time.monotonic() + timeout_s
        while True:
            positions = self.positions()
            if all(positions.get(p, 0) >= end for p, end in ends.items()):
                return True
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(0.1)

    def _ends(self) -> dict[int, int]:
        with self._probe_lock:
            if self._probe is None:
                self._probe = self.access.consumer(
                    {"group.id": self.access.private_group("index-probe"), "enable.auto.commit": False}
                )
            probe = self._probe
            try:
                topic = probe.list_topics(self.topic, timeout=10).topics[self.topic]
                return {
                    p: probe.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                    for p in topic.partitions
                }
            except KafkaException as exc:
                raise IndexBehind(f"cannot read the end of {self.topic}: {exc.args[0]}") from exc

    # -- following (its own thread) -----------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None
        with self._lock:
            self._db.close()

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception:
                self.caught_up.clear()
                log.exception("delivery index: following %s failed; again in %.0f s", self.topic, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _follow(self) -> None:
        consumer = self.access.consumer(
            {
                # The auditor writes in transactions: an aborted event never proves a delivery.
                "isolation.level": "read_committed",
                "group.id": self.access.private_group("delivery-index"),
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            start = self.positions()
            consumer.assign([TopicPartition(self.topic, p, start.get(p, OFFSET_BEGINNING)) for p in partitions])
            at_end: set[int] = set()
            while not self._stop.is_set():
                messages = consumer.consume(self.batch, 0.5)
                if messages:
                    self._apply(messages, at_end)
                if len(at_end) >= len(partitions):
                    self.caught_up.set()
        finally:
            consumer.close()

    def _apply(self, messages: list[Message], at_end: set[int]) -> None:
        rows: list[Change] = []
        moved: dict[int, int] = {}
        for msg in messages:
            partition = msg.partition() or 0
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                at_end.add(partition)
                # The end offset: past any transaction marker that takes the last offset.
                moved[partition] = max(moved.get(partition, 0), msg.offset() or 0)
                continue
            moved[partition] = max(moved.get(partition, 0), (msg.offset() or 0) + 1)
            for event in events_of(decode_record(msg.value())):
                change = index_change(partition, event)
                if change is not None:
                    rows.append(change)
        self._commit(rows, moved)

    def _commit(self, rows: Sequence[Change], moved: dict[int, int]) -> None:
        """Applies the changes in the trail's order (a withdrawal undoes only the deliveries before it) and
        the read positions in one transaction."""
        delivered = 0
        with self._lock:
            advanced = {p: o for p, o in moved.items() if o > self._positions.get(p, 0)}
            db = self._db
            db.execute("BEGIN")
            try:
                run: list[tuple[str | None, ...]] = []
                for change in rows:
                    if isinstance(change, Withdrawn):
                        db.executemany(_DELIVERED, run)
                        run = []
                        where = (change.record_id, change.consumer, change.data_class)
                        db.execute(_WITHDRAWN, (change.basis, *where))
                        db.execute(_UNSUPPORTED, where)
                        continue
                    row, basis = (change.row, change.basis) if isinstance(change, Delivered) else (change, LASTING)
                    run.append((*row, basis))
                    delivered += 1
                db.executemany(_DELIVERED, run)
                db.executemany(
                    "INSERT OR REPLACE INTO receipt_positions VALUES (?, ?, ?)",
                    [(self.topic, p, o) for p, o in advanced.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._positions.update(advanced)
            self.indexed += delivered
        if delivered and self.on_indexed is not None:
            self.on_indexed(delivered)
