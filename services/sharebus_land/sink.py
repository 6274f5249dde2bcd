"""The sink's loop: read a transaction's worth of deliveries, land them with their offsets, repeat."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sharebus_core.catalogue import Catalogue
from sharebus_land.errors import IncompatibleSchema, LandError
from sharebus_land.grants import GrantWatch
from sharebus_land.layout import Placement, plan_placements
from sharebus_land.metrics import LandMetrics
from sharebus_land.offsets import OffsetBook
from sharebus_land.reader import DeliveryReader, Incoming
from sharebus_land.settings import LandSettings
from sharebus_land.shapes import GRANT_ID, LANDED_AT, PERIOD_END, PROVIDER, RECORD_ID, ClassShape
from sharebus_land.store import LandStore
from sharebus_land.unit import Unit
from sharebus_sdk.batches import BatchAssembler

log = logging.getLogger("sharebus.land")
STOPPED, REVOKED = "stopped", "revoked"


class Sink:
    def __init__(
        self,
        settings: LandSettings,
        system: str,
        catalogue: Catalogue,
        store: LandStore,
        reader: Callable[[Mapping[tuple[str, int], int]], DeliveryReader] | None = None,
    ) -> None:
        self.settings, self.system, self.catalogue, self.store = settings, system, catalogue, store
        self.metrics = LandMetrics(system)
        # Any class may reach the system (a grant makes any system a consumer): all get a place.
        self.placements: dict[str, Placement] = plan_placements(
            catalogue, list(catalogue.data_classes), settings.themes
        )
        self.store.register(self.placements.values())
        state = store.open()
        self.stopped = {code: reason for code, (kind, reason) in state.classes.items() if kind == STOPPED}
        self.revoked = {code for code, (kind, _reason) in state.classes.items() if kind == REVOKED}
        self.grants = (
            GrantWatch(settings.gateway_url, settings.api_key, system, catalogue)
            if settings.gateway_url and settings.api_key
            else None
        )
        self._next_grant_check = 0.0
        # The ids of the system's grants known to have ended; None until the gateway has answered once.
        self._ended_grants: set[str] | None = None
        for code in self.stopped:
            self.metrics.stop(code)
        for code in self.revoked:
            self.metrics.revoke(code, True)
        self._landed_batches = set(state.batches)
        self._shapes: dict[tuple[str, int], ClassShape] = {}
        self._book = OffsetBook()
        self._assembler = BatchAssembler()
        # The reader starts where the database says (tests give a reader of their own, with no Kafka).
        self.reader = (
            reader(state.offsets)
            if reader
            else DeliveryReader(settings, system, state.offsets, self.metrics.lost_to_retention)
        )

    def step(self) -> int:
        """Reads up to one transaction's worth of records and lands them; returns how many were read."""
        unit = Unit()
        read = 0
        deadline = time.monotonic() + self.settings.max_wait_ms / 1000
        while unit.records < self.settings.max_records:
            remaining = deadline - time.monotonic()
            item = self.reader.poll(max(0.0, remaining)) if remaining > 0 else None
            if item is None:
                break
            read += 1
            self._take(item, unit)
        # The offsets of what was read go into the same transaction as its rows (rows, then offsets,
        # then COMMIT: LandStore.apply). A failure raises: memory is ahead of the database, so the
        # process ends and a new one resumes from the database's offsets.
        unit.offsets = self._book.to_store()
        if unit:
            self.store.apply(unit)
            self.metrics.transactions.inc()
            for code, count in unit.landed.items():  # counted once committed
                self.metrics.landed(code, count, unit.published_ns.get(code))
            for batch in unit.batches:
                self.metrics.batch(batch["data_class"], batch["batch_id"], batch["period_end"])
        return read

    def _take(self, item: Incoming, unit: Unit) -> None:
        if item.batch is not None:
            self._take_batch_part(item, unit)
            return
        self._book.read(item.position)
        self._land(item, unit)

    def _take_batch_part(self, item: Incoming, unit: Unit) -> None:
        info = item.batch
        assert info is not None
        if info.batch_id in self._landed_batches:
            self._book.read(item.position)  # a release repeated after a router crash: landed already
            return
        self._book.hold(item.position)
        record = item if info.seq is not None else None
        whole = self._assembler.add(info, item.position, record, item.data_class, item.provider, self.system)
        if whole is None:
            return
        batch, positions = whole
        # The batch's parts are released now whatever happens to them, with the transaction that holds them.
        self._book.release(positions)
        landed = [self._land(part, unit) for part in batch.records]
        if not all(landed):
            # A stopped or revoked class: its window is not in the database, so neither is its batch (nor the
            # batch metrics, which say "landed whole").
            log.warning(
                "batch %s of %s: %d of %d record(s) not landed",
                batch.batch_id,
                batch.data_class,
                landed.count(False),
                len(landed),
            )
            return
        unit.batches.append(
            {
                "batch_id": batch.batch_id,
                "data_class": batch.data_class,
                "period_start": batch.period_start,
                "period_end": batch.period_end,
                "records": len(batch.records),
                "landed_at": dt.datetime.now(dt.UTC),
            }
        )
        self._landed_batches.add(batch.batch_id)

    def _land(self, item: Incoming, unit: Unit) -> bool:
        """Puts the record's row (or its tombstone) in ``unit``; False when it is skipped."""
        placement = self.placements.get(item.data_class)
        if placement is None or item.data_class in self.stopped or self._revoked(item):
            self.metrics.skipped.labels(item.data_class or "unknown").inc()
            return False
        # A batch's window end, in UTC: SQLite keeps a timestamp as text without its offset, compared as text.
        window = item.batch.period_end.astimezone(dt.UTC) if item.batch is not None else None
        if item.value is None or item.schema is None:
            if item.key is not None:  # a tombstone: the key's row goes (in a theme table, this class's columns)
                unit.put(placement, item.key, None, item.published_ns, window)
            return True
        shape = self._shape(placement, item, unit)
        if shape is None:
            self.metrics.skipped.labels(item.data_class).inc()
            return False
        value = item.value
        row: dict[str, Any] = {placement.column(name): value.get(name) for name, _kind in shape.fields}
        row[placement.column(RECORD_ID)] = item.record_id
        row[placement.column(PROVIDER)] = item.provider
        row[placement.column(GRANT_ID)] = item.grant_id
        row[placement.column(LANDED_AT)] = unit.landed_at
        row[placement.column(PERIOD_END)] = window
        unit.put(placement, self._row_key(shape, item, value), row, item.published_ns, window)
        return True

    @staticmethod
    def _row_key(shape: ClassShape, item: Incoming, value: Mapping[str, Any]) -> Any:
        """The key field's value, else the message key; where the grant withholds the key, the record's id.

        A withheld key (``sharebus-key-withheld``: the field left out or masked) comes with no message key,
        and a masked value is shared by many keys: keying by either would fold distinct records into one
        row (or fail the key column's NOT NULL). Without a record id, the delivery's position is unique.
        """
        if item.key_withheld is None:
            key = value.get(shape.key_field) if shape.key_field in value else item.key
            if key is not None:
                return key
        topic, partition, offset = item.position
        return item.record_id or f"{topic}:{partition}:{offset}"

    def _revoked(self, item: Incoming) -> bool:
        """Whether a record is of a class whose grant ended. One delivered under a grant not known to have
        ended was delivered under a grant approved since the last poll: its class lands again from it on
        (skipping it would lose it, its offset committed with the next transaction)."""
        if item.data_class not in self.revoked:
            return False
        known = self._ended_grants
        if item.grant_id is None or known is None or item.grant_id in known:
            return True
        self._land_again(item.data_class, f"a delivery under grant {item.grant_id}")
        return False

    def _land_again(self, code: str, why: str) -> None:
        log.info("class %s: granted again (%s), landing again", code, why)
        self.store.set_class_state(code, None)
        self.revoked.discard(code)
        self.metrics.revoke(code, False)

    def _shape(self, placement: Placement, item: Incoming, unit: Unit) -> ClassShape | None:
        assert item.schema is not None
        found = self._shapes.get((item.data_class, item.schema.schema_id))
        if found is not None:
            return found
        key_field = self.catalogue.data_class(item.data_class).key_field
        shape = ClassShape.from_schema(item.data_class, key_field, item.schema.document)
        try:
            for statement in self.store.ensure(placement, shape):
                log.info("%s: %s", item.data_class, statement)
        except IncompatibleSchema as exc:
            self.stop_class(item.data_class, str(exc), unit)
            return None
        self._shapes[(item.data_class, item.schema.schema_id)] = shape
        return shape

    def stop_class(self, data_class: str, reason: str, unit: Unit) -> None:
        """Stops one class for good (until an operator fixes the table); the others go on.

        Written with ``unit``'s transaction, as its offsets are: committed on its own, a crash before the
        transaction's COMMIT would leave the class stopped, and its compatible records of that transaction,
        read again, skipped for good.
        """
        log.error("class %s stopped: %s", data_class, reason)
        self.stopped[data_class] = reason
        unit.class_states[data_class] = (STOPPED, reason)
        self.metrics.stop(data_class)

    def check_grants(self) -> None:
        """Applies the revoke policy to classes whose grant ended; a class granted again lands again."""
        if self.grants is None or time.monotonic() < self._next_grant_check:
            return
        self._next_grant_check = time.monotonic() + self.settings.grant_poll_s
        try:
            standing = self.grants.ended_classes()
        except LandError as exc:
            # Asked again at the next poll. Landing goes on meanwhile: the router delivers nothing under an
            # ended grant, and a class known revoked stays so (_revoked) until an answer says otherwise.
            log.warning("grants not checked: %s; asking again in %gs", exc, self.settings.grant_poll_s)
            return
        self._ended_grants = standing.ended_grants
        for code in sorted(standing.ended - self.revoked):
            reason = "grant revoked, expired or lapsed: rows landed before are kept"
            if self.settings.on_revoke == "purge":
                reason = f"grant revoked, expired or lapsed: {self.store.purge_class(code)} landed row(s) purged"
            log.warning("class %s: %s", code, reason)
            self.store.set_class_state(code, REVOKED, reason)
            self.revoked.add(code)
            self.metrics.revoke(code, True)
        for code in sorted(self.revoked & standing.active):
            self._land_again(code, "delivered again under the grants the gateway lists")

    def caught_up(self, targets: dict[int, int]) -> bool:
        positions = self.reader.positions()
        return all(high <= 0 or positions.get(p, -1) >= high for p, high in targets.items())

    def run(
        self, once: bool = False, stop: threading.Event | None = None, report: Callable[[str], None] | None = None
    ) -> None:
        """Lands until ``stop`` is set, or (``once``) until everything that was there at start has landed."""
        stop = stop or threading.Event()
        targets = self.reader.high_watermarks() if once else {}
        next_status = time.monotonic() + self.settings.status_interval_s
        while not stop.is_set():
            self.check_grants()
            read = self.step()
            if time.monotonic() >= next_status or (once and read == 0):
                self.metrics.refresh(sum(self.reader.lag().values()))
                if report is not None:
                    report(self.metrics.status())
                next_status = time.monotonic() + self.settings.status_interval_s
            if once and read == 0 and self.caught_up(targets):
                return

    def close(self) -> None:
        self.reader.close()
        self.store.dispose()
        if self.grants is not None:
            self.grants.close()
