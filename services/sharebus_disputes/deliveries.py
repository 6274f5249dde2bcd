"""Who received which record: an on-disk index of the audit trail's deliveries, kept by following it.

Only a system that received a record may dispute it, and the audit trail is the proof: every delivery
is an audit event with ``record_id``, ``consumer`` and ``decision: deliver``. Reading the trail on a
request is out of the question (it is kept forever: at 7.46 million records a day it holds billions of
events), so a follower thread reads it once, in order, committed events only, and keeps one row per
(record id, consumer, class) in SQLite. The index's read positions are stored in the same SQLite
transaction as its rows, so a restart resumes where it stopped, nothing twice and nothing lost; the
file is a cache of the log, and deleting it costs one re-read of the trail. Memory stays flat: rows
live on disk (about 100 bytes each, some 1 GB per city-scale day of deliveries).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from sharebus_core.audit_trail import decode_record, events_of
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess

log = logging.getLogger(__name__)

# One row per (record id, consumer, class): record ids are unique within a class only (each provider
# chooses its own), so one system may receive ``r-1`` of two classes, and each is its own receipt.
# Tables of their own (``receipts``, ``receipt_positions``): an index file made when the key was
# (record id, consumer) kept only the first of such receipts, so it is read again from the start.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    record_id TEXT NOT NULL, consumer TEXT NOT NULL, data_class TEXT NOT NULL, provider TEXT, delivered_at TEXT,
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


Row = tuple[str, str, str | None, str | None, str | None]


def delivery_row(event: Any) -> Row | None:
    """The index row of one audit event: deliveries with a record id only."""
    if not isinstance(event, dict) or event.get("decision") != "deliver":
        return None
    record_id, consumer = event.get("record_id"), event.get("consumer")
    if not isinstance(record_id, str) or not isinstance(consumer, str):
        return None

    def text(name: str) -> str | None:
        value = event.get(name)
        return value if isinstance(value, str) else None

    # "" for a delivery that names no class (the key needs a value): it matches no class named in a claim.
    return record_id, consumer, text("data_class") or "", text("provider"), text("time")


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
        rows: list[Row] = []
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
                row = delivery_row(event)
                if row is not None:
                    rows.append(row)
        self._commit(rows, moved)

    def _commit(self, rows: list[Row], moved: dict[int, int]) -> None:
        with self._lock:
            advanced = {p: o for p, o in moved.items() if o > self._positions.get(p, 0)}
            db = self._db
            db.execute("BEGIN")
            try:
                db.executemany("INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?)", rows)
                db.executemany(
                    "INSERT OR REPLACE INTO receipt_positions VALUES (?, ?, ?)",
                    [(self.topic, p, o) for p, o in advanced.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._positions.update(advanced)
            self.indexed += len(rows)
        if rows and self.on_indexed is not None:
            self.on_indexed(len(rows))
