"""Hand-over points with any number of router workers: each partition's point comes from its owner.

A target's hand-over point on a source partition is the first offset delivered live to it there
(``handover.py``). Only the worker that owns the partition knows where it stands, so:

- **On assignment** (``claim``), before the worker routes a record of a partition, it reads the
  ledger to its end, takes the group's committed offset as where it starts, and records that point
  for every target of its routes that has none on the partition yet. The reads serve the whole
  assignment; each partition has a task of its own, so a revocation cancels that partition's claim
  alone, and a point once recorded is written (shielded: ``ledger.has`` would never record it again).
- **A point another worker wrote** for a target this worker lacks (its grant follower is behind, or
  its catalogue older: ``_retired``) holds the partition back until the target is installed or known
  to be gone: records at or past a point always reach its target.
- **As it routes** (``points_for``), a target installed later gets its point on every partition
  the worker has claimed, at the handler's position there (the next offset it will route).
- **Periodic classes**: the point is on the held topic, the open window's start, written by the owner
  of the class's held partition once its table is recovered and the ledger read since the assignment
  (``sweep_held``; releases wait until then), and not while a window is being released (``_held_points``).

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
# What ``lacking_held`` names while the ledger has not been read since a held partition was assigned.
LEDGER_UNREAD = "(the hand-over ledger, not read again since the held partition was assigned)"
Key = tuple[str, int]


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
        # Periodic classes whose window this worker is releasing now (holding.py adds and removes them).
        self.releasing: set[str] = set()
        # When this worker's catalogue was loaded: a point of a subscription it lacks written since then
        # comes from a newer catalogue (``_retired``).
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

    async def refresh(self) -> None:
        """Reads the ledger again (the points other workers wrote since)."""
        generation = self.held_generation
        self.table.ledger.load(await self.read_ledger())
        # A read begun after the held partitions last changed has every point their previous owners wrote.
        self._held_read = max(self._held_read, generation)

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
        while lacking := self.lacking(code, topic, partition):
            unknown = [key for key in lacking if self._unknown_subscription(code, key)]
            # A catalogue older than the ledger never mends itself: said at once, not after a while.
            if loop.time() >= next_report or not told.issuperset(unknown):
                self._report_wait(topic, partition, lacking, unknown, loop.time() - started)
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

    def _unknown_subscription(self, code: str, key: str) -> bool:
        entry = self.table.ledger.get(key)
        return entry is not None and entry.grant_id is None and not self.table.subscribed(code, entry.consumer)

    def lacking(self, code: str, topic: str, partition: int) -> list[str]:
        """Targets with a point on the partition that this worker's routes do not have yet."""
        route = self.table.routes.get(self.topics.source(code))
        if route is None or route.closed or not self.table.ready.is_set():
            return []
        have = {handover_key(t.consumer, code, t.grant_id) for t in route.targets}
        return [
            entry.key
            for entry in self.table.ledger.on_partition(topic, partition)
            if entry.key not in have
            and not self.table.settled(code, entry.consumer, entry.grant_id)
            and not self._retired(code, entry)
        ]

    def _retired(self, code: str, entry: Handover) -> bool:
        """Whether a subscription this worker's catalogue lacks was removed from the catalogue (so its point
        binds nothing), rather than added to a catalogue newer than this worker's.

        The catalogue carries no version, so the ledger tells: a retired subscription had its points on
        every partition of the class (the workers on the catalogue that had it claimed them all), and the
        newest of them is older than this worker's start. A subscription a newer catalogue adds is
        recorded partition by partition as the workers on that catalogue claim them, after this worker
        loaded its own. A worker started on an older catalogue after every partition has the new
        subscription's point is not told apart from one whose catalogue removed it: that is a rollback.
        """
        if entry.grant_id is not None or self.table.subscribed(code, entry.consumer):
            return False
        ledger = self.table.ledger
        if entry.topic != self.topics.held and entry.key not in ledger.whole:
            partitions = self.table.catalogue.data_class(code).partitions
            if not set(range(partitions)) <= set(entry.live_from):
                return False
        newest = ledger.newest(entry.key)
        return newest is not None and newest < self.started

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
        return self.lacking(code, self.topics.held, self.held_partition_of(code))
