"""Hand-over points of periodic classes: on the held topic, at the open window's start, recorded by the
owner of the class's held partition once its table is recovered and the ledger read since the assignment,
and not while a window is being released (live_points.py says how they fit with the source partitions')."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.partitioner import murmur2

from sharebus_core.topics import TopicNames
from sharebus_router.handover import Handover, handover_key
from sharebus_router.ledger_gaps import lacking
from sharebus_router.periodic import HoldState
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import ClassRoute

log = logging.getLogger(__name__)

Write = Callable[[Handover], Awaitable[None]]
ReadLedger = Callable[[], Awaitable[list[Any]]]
# What ``lacking_held`` names while the ledger has not been read since a held partition was assigned.
LEDGER_UNREAD = "(the hand-over ledger, not read again since the held partition was assigned)"


def held_partition(class_code: str, partitions: int) -> int:
    """The held partition of a class: where the producer's default partitioner puts its key."""
    return (int(murmur2(class_code.encode())) & 0x7FFFFFFF) % partitions


class HeldPoints:
    """The held partitions' side of ``PointKeeper`` (live_points.py), which sets the state declared here."""

    table: RouteTable
    topics: TopicNames
    held_partitions: int
    write: Write
    read_ledger: ReadLedger
    hold_state: Callable[[str], HoldState | None]
    recovered: Callable[[], bool]
    releasing: set[str]
    started: dt.datetime
    owned_held: set[int]
    held_generation: int
    _held_read: int
    _swept: dict[str, ClassRoute]

    async def refresh(self) -> None:
        """Reads the ledger again (the points other workers wrote since)."""
        generation = self.held_generation
        self.table.ledger.load(await self.read_ledger())
        # A read begun after the held partitions last changed has every point their previous owners wrote.
        self._held_read = max(self._held_read, generation)

    def held_partition_of(self, code: str) -> int:
        state = self.hold_state(code)
        return state.partition if state is not None else held_partition(code, self.held_partitions)

    def releasing_now(self, code: str) -> bool:
        """Whether a window of the class is being released: its targets are fixed, a new one is not among them.

        Either this worker's release has begun (``releasing``, from before it reads the routes to after the
        new state is written), or an attempt kept its plan (``audited``) and a retry, here or on the next
        owner after a crash, sends only to the plan's targets.
        """
        if code in self.releasing:
            return True
        state = self.hold_state(code)
        return state is not None and state.audited is not None

    def _held_points(self, route: ClassRoute) -> list[Handover] | None:
        """The held points of the route's new targets; None while they cannot be recorded yet (look again).

        The point is the open window's start (``since``): the window reaches the target in its batch, the
        backfill replays what was held before it. That holds only if the window's release sends to the
        target, which it does when the target is in the routes the release reads at its start. While a
        window is being released (``releasing_now``) it does not: its first attempt read the routes already,
        and a retry sends only to its plan. A point at that window's start would then leave the window to
        neither path. So no point is recorded meanwhile: the sweep records it once the new state is written,
        at the next window's start, and the backfill replays the released window too. Both facts it goes by
        are the releasing worker's own (the releases of a class are its held partition's owner's, and so are
        its points) or durable (``audited`` is in the changelog), so this holds with any number of workers
        and across crashes; a target installed after the window ended but before its release read the
        routes keeps the window's start and gets the window in its batch.
        """
        code = route.data_class
        partition = self.held_partition_of(code)
        if partition not in self.owned_held or not self.recovered():
            return []
        if self.releasing_now(code):
            return None
        state = self.hold_state(code)
        # No state: nothing of the class was ever held, so there is no history; its first window
        # reaches the target as a batch.
        since = state.since if state is not None else 0
        ledger = self.table.ledger
        entries = []
        for target in route.targets:
            key = handover_key(target.consumer, code, target.grant_id)
            if not ledger.has(key, partition):
                point = {partition: since}
                entries.append(ledger.record(target.consumer, code, target.grant_id, self.topics.held, point))
        return entries

    async def sweep_held(self) -> None:
        """Records held points missing on this worker's held partitions (after an assignment, a recovery or a
        release), having read the ledger again since the held partitions last changed."""
        if not self.owned_held or not self.table.ready.is_set():
            return
        if self._held_read != self.held_generation:
            try:
                await self.refresh()
            except Exception:
                # Releases wait meanwhile (``lacking_held``); the next sweep reads it again.
                log.exception("reading the hand-over ledger for the held partitions failed; retrying")
                return
        swept = self._swept
        for route in list(self.table.routes.values()):  # a route may be rebuilt while a point is written
            if not route.held or swept.get(route.data_class) is route:
                continue
            owned = self.held_partition_of(route.data_class) in self.owned_held
            if owned and not self.recovered():
                continue  # the held state is not this partition's yet: look again next time
            entries = self._held_points(route)
            if entries is None:
                continue  # a window is being released: look again next time
            for entry in entries:
                await self.write(entry)
            swept[route.data_class] = route

    def releases(self, code: str) -> bool:
        """Whether this worker holds (and releases) the class's windows: it owns the class's held partition."""
        return self.held_partition_of(code) in self.owned_held

    def lacking_held(self, code: str) -> list[str]:
        """Targets with a point on the class's held partition that this worker's routes lack (the release
        waits for them); until the ledger is read after the held partition's assignment, the ledger itself."""
        if self._held_read != self.held_generation:
            return [LEDGER_UNREAD]
        return lacking(self.table, self.topics, self.started, code, self.topics.held, self.held_partition_of(code))
