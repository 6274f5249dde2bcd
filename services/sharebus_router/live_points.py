"""Hand-over points with any number of router workers: each partition's point comes from its owner.

A target's hand-over point on a source partition is the first offset delivered live to it there
(``handover.py``). Only the worker that owns the partition knows where it stands, so:

- **On assignment** (``claim``), before the worker routes a record of a partition, it reads the
  ledger to its end, takes the group's committed offset as where it starts, and records that point
  for every target of its routes that has none on the partition yet. A point some other worker
  wrote for a target this worker has not installed yet (its grant follower is a moment behind)
  holds routing of the partition back until the target is installed, or known to be gone (revoked,
  closed): records at or past a point always reach its target.
- **As it routes** (``points_for``), a target installed later gets its point on every partition
  the worker has claimed, at the handler's position there (the next offset it will route).
- **Periodic classes**: the point is on the held topic, written by the owner of the class's held
  partition (where the ``hold`` agent and the ``periods`` table are), once the table is recovered.

A backfill waits until every partition of the class has a point (``backfill.py``), so what it
replays and what live delivery covers meet with no gap and no overlap, whichever worker owned a
partition when the target went live, and across rebalances.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka.partitioner import murmur2

from sharebus_core.topics import TopicNames
from sharebus_router.handover import Handover, handover_key
from sharebus_router.periodic import HoldState
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import ClassRoute

log = logging.getLogger(__name__)

Committed = Callable[[list[str]], Awaitable[dict[tuple[str, int], int]]]
Write = Callable[[Handover], Awaitable[None]]
ReadLedger = Callable[[], Awaitable[list[Any]]]
# How often a partition waiting for a target another worker made live logs that it still waits.
TARGET_WAIT_S = 30.0


def held_partition(class_code: str, partitions: int) -> int:
    """The held partition of a class: where the producer's default partitioner puts its key."""
    return (int(murmur2(class_code.encode())) & 0x7FFFFFFF) % partitions


class PointKeeper:
    def __init__(
        self,
        table: RouteTable,
        topics: TopicNames,
        held_partitions: int,
        committed: Committed,
        write: Write,
        read_ledger: ReadLedger,
        recovered: Callable[[], bool],
    ) -> None:
        self.table = table
        self.topics = topics
        self.held_partitions = held_partitions
        self.committed = committed
        self.write = write
        self.read_ledger = read_ledger
        # Set once the holding is wired (holding.py), like the route table's.
        self.hold_state: Callable[[str], HoldState | None] = lambda code: None
        self.recovered = recovered
        self.classes = {topics.source(code): code for code in table.catalogue.data_classes}
        self._claims: dict[tuple[str, int], asyncio.Task[None]] = {}
        # Source partitions claimed (points recorded): the handler's positions there are this worker's.
        self.ready: set[tuple[str, int]] = set()
        self.owned_held: set[int] = set()
        self.assigned: set[tuple[str, int]] = set()
        # Revoked and not assigned again: a claim there would write a point for another worker's partition.
        self.revoked: set[tuple[str, int]] = set()
        # Class -> the route whose held points were all recorded (or are not this worker's to record).
        # Routes are rebuilt, never changed, so the route itself says when a class needs a sweep again:
        # a sweep of the city's 1,076 periodic classes took 1.1 s of every second (issue 13).
        self._swept: dict[str, ClassRoute] = {}

    # -- assignment ---------------------------------------------------------------------------------

    def on_assigned(self, tps: Iterable[Any]) -> None:
        fresh: list[tuple[str, int]] = []
        for tp in tps:
            self.assigned.add((tp.topic, tp.partition))
            self.revoked.discard((tp.topic, tp.partition))
            if tp.topic == self.topics.held:
                self.owned_held.add(tp.partition)
                self._swept.clear()
            elif tp.topic in self.classes and (tp.topic, tp.partition) not in self.ready:
                task = self._claims.get((tp.topic, tp.partition))
                if task is None or task.done():
                    fresh.append((tp.topic, tp.partition))
        if fresh:
            # One claim for the whole assignment: one read of the ledger and of the committed offsets,
            # not one per partition (thousands at city scale).
            self._start_claims(fresh)

    def on_revoked(self, tps: Iterable[Any]) -> None:
        for tp in tps:
            key = (tp.topic, tp.partition)
            self.assigned.discard(key)
            self.revoked.add(key)
            self.ready.discard(key)
            if tp.topic == self.topics.held:
                self.owned_held.discard(tp.partition)
                self._swept.clear()
            task = self._claims.pop(key, None)
            if task is not None and not task.done():
                task.cancel()
            code = self.classes.get(tp.topic)
            if code is not None:
                # Whatever this worker routed there is the next owner's business now.
                self.table.positions.get(code, {}).pop(tp.partition, None)

    async def refresh(self) -> None:
        """Reads the ledger again (the points other workers wrote since)."""
        self.table.ledger.load(await self.read_ledger())

    def owns(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self.assigned

    def unclaimed(self) -> int:
        """Source partitions assigned here whose points are not recorded yet: nothing routes there yet."""
        return sum(1 for key in self.assigned if key[0] in self.classes and key not in self.ready)

    async def claim(self, topic: str, partition: int) -> None:
        """Returns once the partition's points are recorded; the route agent awaits it before routing.

        A record of a partition revoked meanwhile returns at once: the next owner claims it and routes
        the record again (a claim here could only write a stale point).
        """
        key = (topic, partition)
        while key not in self.ready:
            if key in self.revoked:
                return
            task = self._claims.get(key)
            if task is None or task.cancelled():
                task = self._start_claims([key])
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise  # the caller itself is being cancelled

    def _start_claims(self, keys: list[tuple[str, int]]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._claim(keys))
        for key in keys:
            self._claims[key] = task
        return task

    async def _claim(self, keys: list[tuple[str, int]]) -> None:
        started = time.monotonic()
        topics = sorted({topic for topic, _ in keys})
        while True:
            try:
                self.table.ledger.load(await self.read_ledger())
                committed = await self.committed(topics)
                break
            except Exception:
                log.exception(
                    "claiming %d partition(s): the ledger or the committed offsets failed; retrying", len(keys)
                )
                await asyncio.sleep(1.0)
        for topic, partition in keys:
            self.table.positions.setdefault(self.classes[topic], {})[partition] = committed.get((topic, partition), 0)
        await asyncio.gather(*(self._await_targets(self.classes[t], t, p) for t, p in keys))
        # No await between marking the partitions ready and recording: the routes read here are the
        # ones their first records will meet.
        self.ready.update(keys)
        entries = []
        for topic in topics:
            route = self.table.routes.get(topic)
            if route is not None:
                entries += self._live_points(route, topic, sorted(p for t, p in keys if t == topic))
        for entry in entries:
            await self.write(entry)
        log.info("claimed %d source partition(s) in %.1f s", len(keys), time.monotonic() - started)

    async def _await_targets(self, code: str, topic: str, partition: int) -> None:
        """Returns once this worker's routes have every target with a point on the partition, however long.

        Routing before then would lose the records past the point for that target: its backfill stops
        at the point, and live delivery here would leave it out. Fail closed: the partition waits, the
        worker is not ready (``/readyz`` counts it unclaimed), and the wait is logged every
        ``TARGET_WAIT_S``: a grant follower that far behind is an operator's business.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_report = started + TARGET_WAIT_S
        while lacking := self.lacking(code, topic, partition):
            if loop.time() >= next_report:
                log.error(
                    "%s[%d]: targets %s have hand-over points here but are not installed on this worker after"
                    " %.0f s; the partition waits for them (is the grant follower behind?)",
                    topic,
                    partition,
                    lacking,
                    loop.time() - started,
                )
                next_report = loop.time() + TARGET_WAIT_S
            await asyncio.sleep(0.1)

    def lacking(self, code: str, topic: str, partition: int) -> list[str]:
        """Targets with a point on the partition that this worker's routes do not have yet."""
        route = self.table.routes.get(self.topics.source(code))
        if route is None or route.closed or not self.table.ready.is_set():
            return []
        have = {handover_key(t.consumer, code, t.grant_id) for t in route.targets}
        return [
            entry.key
            for entry in self.table.ledger.on_partition(topic, partition)
            if entry.key not in have and not self.table.settled(code, entry.consumer, entry.grant_id)
        ]

    # -- points -------------------------------------------------------------------------------------

    def points_for(self, routes: Iterable[ClassRoute]) -> list[Handover]:
        """Points of targets new on this worker's partitions; recorded in the ledger, to be written."""
        entries: list[Handover] = []
        for route in routes:
            if route.held:
                entries += self._held_points(route)
                continue
            topic = self.topics.source(route.data_class)
            mine = sorted(p for t, p in self.ready if t == topic)
            entries += self._live_points(route, topic, mine)
        return entries

    def _live_points(self, route: ClassRoute, topic: str, partitions: list[int]) -> list[Handover]:
        if route.held:
            return []
        positions = self.table.positions.setdefault(route.data_class, {})
        ledger = self.table.ledger
        entries = []
        for target in route.targets:
            key = handover_key(target.consumer, route.data_class, target.grant_id)
            for partition in partitions:
                if not ledger.has(key, partition) and partition in positions:
                    entries.append(
                        ledger.record(
                            target.consumer, route.data_class, target.grant_id, topic, {partition: positions[partition]}
                        )
                    )
        return entries

    def held_partition_of(self, code: str) -> int:
        state = self.hold_state(code)
        return state.partition if state is not None else held_partition(code, self.held_partitions)

    def _held_points(self, route: ClassRoute) -> list[Handover]:
        code = route.data_class
        partition = self.held_partition_of(code)
        if partition not in self.owned_held or not self.recovered():
            return []
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
        """Records held points missing on this worker's held partitions (after an assignment or recovery)."""
        if not self.owned_held or not self.table.ready.is_set():
            return
        swept = self._swept
        for route in list(self.table.routes.values()):  # a route may be rebuilt while a point is written
            if not route.held or swept.get(route.data_class) is route:
                continue
            owned = self.held_partition_of(route.data_class) in self.owned_held
            if owned and not self.recovered():
                continue  # the held state is not this partition's yet: look again next time
            for entry in self._held_points(route):
                await self.write(entry)
            swept[route.data_class] = route

    def releases(self, code: str) -> bool:
        """Whether this worker holds (and releases) the class's windows: it owns the class's held partition."""
        return self.held_partition_of(code) in self.owned_held

    def lacking_held(self, code: str) -> list[str]:
        return self.lacking(code, self.topics.held, self.held_partition_of(code))
