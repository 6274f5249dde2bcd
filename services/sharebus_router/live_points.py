"""Hand-over points with any number of router workers: each partition's point comes from its owner.

A target's hand-over point on a source partition is the first offset delivered live to it there
(``handover.py``). Only the worker that owns the partition knows where it stands, so:

- **On assignment** (``claim``), before the worker routes a record of a partition, it reads the
  ledger to its end, takes the group's committed offset as where it starts, and records that point
  for every target of its routes that has none on the partition yet. The reads serve the whole
  assignment; each partition has a task of its own, so a revocation cancels that partition's claim
  alone, and a point once recorded is written (shielded: ``ledger.has`` would never record it again).
- **A point another worker wrote** for a target this worker lacks (its grant follower is behind, or
  its catalogue older: ``ledger_gaps.retired``) holds the partition back until the target is installed or known
  to be gone: records at or past a point always reach its target.
- **As it routes** (``points_for``), a target installed later gets its point on every partition
  the worker has claimed, at the handler's position there (the next offset it will route).
- **Periodic classes**: the point is on the held topic, the open window's start, written by the owner
  of the class's held partition once its table is recovered and the ledger read since the assignment
  (``sweep_held``; releases wait until then), and not while a window is being released (held_points.py).

A backfill waits until every partition of the class has a point (``backfill.py``), so what it
replays and what live delivery covers meet with no gap, whichever worker owned a partition when the
target went live, and across rebalances.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sharebus_core.topics import TopicNames
from sharebus_router.handover import Handover, handover_key
from sharebus_router.held_points import HeldPoints, ReadLedger, Write
from sharebus_router.ledger_gaps import lacking, unknown_subscription
from sharebus_router.periodic import HoldState
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import ClassRoute

log = logging.getLogger(__name__)

Committed = Callable[[list[str]], Awaitable[dict[tuple[str, int], int]]]
# How often a partition waiting for a target another worker made live logs that it still waits.
TARGET_WAIT_S = 30.0
Key = tuple[str, int]


class PointKeeper(HeldPoints):
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
        # Periodic classes whose window this worker is releasing now (holding.py adds and removes them).
        self.releasing: set[str] = set()
        # When this worker's catalogue was loaded: a point of a subscription it lacks written since then
        # comes from a newer catalogue (``ledger_gaps.retired``).
        self.started = dt.datetime.now(dt.UTC)
        self.classes = {topics.source(code): code for code in table.catalogue.data_classes}
        self._claims: dict[Key, asyncio.Task[None]] = {}
        # Source partitions claimed (points recorded): the handler's positions there are this worker's.
        self.ready: set[Key] = set()
        self.owned_held: set[int] = set()
        # Changes on every assignment or revocation of a held partition (holding.py's ``ownership``).
        self.held_generation = 0
        # The held generation the ledger was last read at (``sweep_held``): releases wait until it is current.
        self._held_read = 0
        self.assigned: set[Key] = set()
        # Revoked and not assigned again: a claim there would write a point for another worker's partition.
        self.revoked: set[Key] = set()
        # Class -> the route whose held points were all recorded (or are not this worker's to record).
        # Routes are rebuilt, never changed, so the route itself says when a class needs a sweep again:
        # a sweep of the city's 1,076 periodic classes took 1.1 s of every second (issue 13).
        self._swept: dict[str, ClassRoute] = {}

    # -- assignment ---------------------------------------------------------------------------------

    def on_assigned(self, tps: Iterable[Any]) -> None:
        fresh: list[Key] = []
        for tp in tps:
            self.assigned.add((tp.topic, tp.partition))
            self.revoked.discard((tp.topic, tp.partition))
            if tp.topic == self.topics.held:
                self.owned_held.add(tp.partition)
                self.held_generation += 1
                self._swept.clear()
            elif tp.topic in self.classes and (tp.topic, tp.partition) not in self.ready:
                task = self._claims.get((tp.topic, tp.partition))
                if task is None or task.done():
                    fresh.append((tp.topic, tp.partition))
        if fresh:
            # One read of the ledger and of the committed offsets for the whole assignment, not one per
            # partition (thousands at city scale).
            self._start_claims(fresh)

    def on_revoked(self, tps: Iterable[Any]) -> None:
        for tp in tps:
            key = (tp.topic, tp.partition)
            self.assigned.discard(key)
            self.revoked.add(key)
            self.ready.discard(key)
            if tp.topic == self.topics.held:
                self.owned_held.discard(tp.partition)
                self.held_generation += 1
                self._swept.clear()
            task = self._claims.pop(key, None)
            if task is not None and not task.done():
                task.cancel()  # this partition's claim only (its points, once marked ready, are still written)
            code = self.classes.get(tp.topic)
            if code is not None:
                # Whatever this worker routed there is the next owner's business now.
                self.table.positions.get(code, {}).pop(tp.partition, None)

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
                task = self._start_claims([key])[key]
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not task.cancelled() or (current is not None and current.cancelling()):
                    raise  # the caller itself is being cancelled (with the claim, at a shutdown)

    def _start_claims(self, keys: list[Key]) -> dict[Key, asyncio.Task[None]]:
        started = time.monotonic()
        reads = asyncio.ensure_future(self._read_start(keys))
        tasks = {key: asyncio.ensure_future(self._claim(key, reads)) for key in keys}
        self._claims.update(tasks)

        def claimed(_: object) -> None:
            done = sum(1 for task in tasks.values() if not task.cancelled())
            log.info("claimed %d of %d source partition(s) in %.1f s", done, len(keys), time.monotonic() - started)

        asyncio.gather(*tasks.values(), return_exceptions=True).add_done_callback(claimed)
        return tasks

    async def _read_start(self, keys: list[Key]) -> dict[Key, int]:
        """Reads the ledger to its end, and the committed offsets of the partitions: where each starts."""
        topics = sorted({topic for topic, _ in keys})
        while True:
            try:
                self.table.ledger.load(await self.read_ledger())
                return await self.committed(topics)
            except Exception:
                log.exception(
                    "claiming %d partition(s): the ledger or the committed offsets failed; retrying", len(keys)
                )
                await asyncio.sleep(1.0)

    async def _claim(self, key: Key, reads: asyncio.Future[dict[Key, int]]) -> None:
        # Shielded: the reads serve every partition of the assignment, this one's revocation must not end them.
        committed = await asyncio.shield(reads)
        topic, partition = key
        code = self.classes[topic]
        self.table.positions.setdefault(code, {})[partition] = committed.get(key, 0)
        await self._await_targets(code, topic, partition)
        # No await between marking the partition ready and recording: the routes read here are the
        # ones its first records will meet.
        self.ready.add(key)
        route = self.table.routes.get(topic)
        entries = self._live_points(route, topic, [partition]) if route is not None else []
        # Recorded in memory now, so written whatever happens to this claim: a revocation while the write
        # is in flight must not leave a point that no other worker will ever read.
        await asyncio.shield(self._write_all(entries))

    async def _write_all(self, entries: list[Handover]) -> None:
        for entry in entries:
            await self.write(entry)

    async def _await_targets(self, code: str, topic: str, partition: int) -> None:
        """Returns once this worker's routes have every target with a point on the partition, however long.

        Routing before then would lose the records past the point for that target: its backfill stops
        at the point, and live delivery here would leave it out. Fail closed: the partition waits, the
        worker is not ready (``/readyz`` counts it unclaimed), and the wait is logged every
        ``TARGET_WAIT_S``: a grant follower that far behind, or a catalogue older than the ledger, is an
        operator's business.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_report = started + TARGET_WAIT_S
        told: set[str] = set()
        while missing := self.lacking(code, topic, partition):
            unknown = [key for key in missing if unknown_subscription(self.table, code, key)]
            # A catalogue older than the ledger never mends itself: said at once, not after a while.
            if loop.time() >= next_report or not told.issuperset(unknown):
                self._report_wait(topic, partition, missing, unknown, loop.time() - started)
                told.update(unknown)
                next_report = loop.time() + TARGET_WAIT_S
            await asyncio.sleep(0.1)

    @staticmethod
    def _report_wait(topic: str, partition: int, lacking: list[str], unknown: list[str], waited: float) -> None:
        if unknown:
            log.error(
                "%s[%d]: catalogue older than the hand-over ledger; restart with the current catalogue"
                " (subscriptions %s have hand-over points here and are not in this worker's catalogue;"
                " the partition waits, %.0f s so far)",
                topic,
                partition,
                unknown,
                waited,
            )
        behind = [key for key in lacking if key not in unknown]
        if behind and waited >= TARGET_WAIT_S:
            log.error(
                "%s[%d]: targets %s have hand-over points here but are not installed on this worker after"
                " %.0f s; the partition waits for them (is the grant follower behind?)",
                topic,
                partition,
                behind,
                waited,
            )

    def lacking(self, code: str, topic: str, partition: int) -> list[str]:
        """Targets with a point on the partition that this worker's routes do not have yet (ledger_gaps.py)."""
        return lacking(self.table, self.topics, self.started, code, topic, partition)

    # -- points -------------------------------------------------------------------------------------

    def points_for(self, routes: Iterable[ClassRoute]) -> list[Handover]:
        """Points of targets new on this worker's partitions; recorded in the ledger, to be written."""
        entries: list[Handover] = []
        for route in routes:
            if route.held:
                entries += self._held_points(route) or []
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
