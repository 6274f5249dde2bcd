"""The router's live view: grants as the log says now, and the routes that follow from them.

Grant events arrive from a follower thread (``on_grant``, called in the event loop). A changed
grant marks its class dirty; ``maintain`` rebuilds dirty classes and those whose grants expire,
so approvals, revocations and expiries take effect within about a second, without a restart.

Failing closed: a class whose routes cannot be built (registry down, a grant the rules cannot
handle) gets a closed route that denies every consumer (``routes_unavailable``), never keeps its
old routes, and is retried on every pass; ``sharebus_routes_closed`` says so. A grant whose latest
signed event cannot be read is closed too (``on_closed``): dropped, so its class is rebuilt
without it. One class or one event can therefore never keep the router from becoming ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant
from sharebus_core.topics import TopicNames
from sharebus_router.handover import Handover, HandoverLedger, handover_key
from sharebus_router.periodic import HoldState
from sharebus_router.routes import ClassRoute, RouteBuilder, Target

log = logging.getLogger(__name__)
_BUILDS_IN_FLIGHT = 16
_MAINTAIN_INTERVAL_S = 0.5


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RouteTable:
    def __init__(
        self,
        catalogue: Catalogue,
        topics: TopicNames,
        builder: RouteBuilder,
        clock: Callable[[], dt.datetime] = utc_now,
        committed: Callable[[list[str]], Awaitable[dict[tuple[str, int], int]]] | None = None,
        on_handover: Callable[[Handover], Awaitable[None]] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.topics = topics
        self.builder = builder
        self.clock = clock
        # The router group's committed offsets per source partition (None in unit tests: nothing committed).
        self.committed = committed
        self._on_handover = on_handover
        self.ledger = HandoverLedger()
        # Periodic classes' hold state (set once the holding is wired; see holding.py).
        self.hold_state: Callable[[str], HoldState | None] | None = None
        # With router workers sharing the partitions, the points of new targets on this worker's own
        # partitions (live_points.py). None: a lone router (unit tests) records every partition's.
        self.points_for: Callable[[list[ClassRoute]], list[Handover]] | None = None
        # Read by the record handler on every record; only this class writes it, in the event loop.
        self.routes: dict[str, ClassRoute] = {}
        self.ready = asyncio.Event()
        self._grants: dict[str, Grant] = {}
        self._dirty: set[str] = set()
        # class code -> partition -> next source offset to route.
        self.positions: dict[str, dict[int, int]] = {}
        self._wake = asyncio.Event()
        # Grant events received, and how many of them the current routes reflect (shown on /readyz,
        # so a caller can tell when its change is in force).
        self.grant_events = 0
        self.grant_events_routed = 0
        # Grants closed by an unreadable event, and classes whose routes are closed (build failed).
        self.closed_grants: set[str] = set()
        self.failed: set[str] = set()

    def on_grant(self, grant: Grant) -> None:
        self.grant_events += 1
        self.closed_grants.discard(grant.grant_id)
        self.builder.metrics.grants_closed.set(len(self.closed_grants))
        self._grants[grant.grant_id] = grant
        if grant.data_class in self.catalogue.data_classes:
            self._dirty.add(grant.data_class)
            self._wake.set()
        else:
            log.warning("grant %s names unknown data class %s; ignored", grant.grant_id, grant.data_class)

    def on_closed(self, grant_id: str) -> None:
        """The grant's latest signed event cannot be read: nothing it allowed stays in force."""
        self.grant_events += 1
        self.closed_grants.add(grant_id)
        self.builder.metrics.grants_closed.set(len(self.closed_grants))
        grant = self._grants.pop(grant_id, None)
        log.error("grant %s closed: its latest signed event cannot be read; its access is denied", grant_id)
        if grant is not None and grant.data_class in self.catalogue.data_classes:
            self._dirty.add(grant.data_class)
            self._wake.set()

    async def on_handover(self, entry: Handover) -> None:
        if self._on_handover is not None:
            await self._on_handover(entry)

    def grants(self) -> list[Grant]:
        return list(self._grants.values())

    def entitled(self) -> list[tuple[str, str, str]]:
        """(provider, consumer, data class) of every live target: who may ask for a backfill now."""
        return [(r.provider, t.consumer, r.data_class) for r in list(self.routes.values()) for t in r.targets]

    def grants_of(self, class_code: str) -> dict[str, list[Grant]]:
        by_consumer: dict[str, list[Grant]] = defaultdict(list)
        for grant in self._grants.values():
            if grant.data_class == class_code:
                by_consumer[grant.consumer].append(grant)
        return dict(by_consumer)

    async def _build(self, class_code: str, now: dt.datetime) -> ClassRoute:
        """The class's routes, or a closed route denying everyone when they cannot be built."""
        entry = self.catalogue.data_class(class_code)
        labels = (entry.provider, class_code)
        try:
            route = await self.builder.build(class_code, self.grants_of(class_code), now)
        except Exception:
            self.builder.metrics.route_build_failures.labels(*labels).inc()
            if class_code not in self.failed:
                log.exception(
                    "building the routes of %s failed; every consumer is denied until it succeeds", class_code
                )
            self.failed.add(class_code)
            self.builder.metrics.routes_closed.labels(*labels).set(1)
            return self.builder.closed(class_code, self._consumers(class_code))
        if class_code in self.failed:
            log.info("routes of %s built again; the class is open", class_code)
            self.failed.discard(class_code)
            # A class gets its series when it first closes, not one per class at 0 from the start.
            self.builder.metrics.routes_closed.labels(*labels).set(0)
        return route

    def _consumers(self, class_code: str) -> list[str]:
        """Everyone who could be receiving the class: subscribers, grant holders, the current route's consumers."""
        found = [s.system for s in self.catalogue.subscriptions_of(class_code)]
        found += self.grants_of(class_code)
        current = self.routes.get(self.topics.source(class_code))
        if current is not None:
            found += [t.consumer for t in current.targets] + [d.consumer for d in current.denials]
        return sorted(set(found))

    async def rebuild(self, class_code: str) -> None:
        await self._install([await self._build(class_code, self.clock())])

    async def build_all(self, ready_if_closed: bool = True) -> None:
        """Every class's routes; a class that fails is installed closed and retried by ``maintain``.

        ``ready_if_closed=False`` (the router's first attempts at start) leaves the table not ready
        while a class is closed, so that a registry still starting delays routing instead of
        denying records for good; once the start-up grace is over the router routes regardless.
        """
        seen = self.grant_events
        self._dirty.clear()
        now = self.clock()
        # Several classes at once: building a route registers its projections' schemas, and at city
        # scale (6,847 subscriptions) one registration after another kept the router from starting.
        limit = asyncio.Semaphore(_BUILDS_IN_FLIGHT)

        async def build(class_code: str) -> ClassRoute:
            async with limit:
                return await self._build(class_code, now)

        await self._install(list(await asyncio.gather(*(build(c) for c in self.catalogue.data_classes))))
        self._dirty |= self.failed
        if not self.failed:
            self.grant_events_routed = seen
        if ready_if_closed or not self.failed:
            self.ready.set()

    def settled(self, class_code: str, consumer: str, grant_id: str | None) -> bool:
        """Whether this worker's routes of the class are final about a grant's target they lack: its grant is
        known here (revoked, expired, closed) and the class rebuilt since.

        Never about a subscription: one in this catalogue is routed once the class is rebuilt, and one absent
        from it may be in a newer catalogue (a rolling restart) as well as removed from this one; only the
        ledger can tell (``ledger_gaps.retired``)."""
        if class_code in self._dirty or grant_id is None:
            return False
        return grant_id in self._grants or grant_id in self.closed_grants

    def subscribed(self, class_code: str, consumer: str) -> bool:
        """Whether this worker's catalogue has the consumer's subscription to the class."""
        return any(s.system == consumer for s in self.catalogue.subscriptions_of(class_code))

    async def _install(self, built: list[ClassRoute]) -> None:
        """Installs routes; a target never live before gets its hand-over point in the same step."""
        if self.points_for is not None:
            # No await between installing and recording: the points are the handler's positions at
            # the instant the new targets become visible to it.
            for route in built:
                positions = self.positions.setdefault(route.data_class, {})
                self.routes[self.topics.source(route.data_class)] = dataclasses.replace(route, next_offsets=positions)
            for entry in self.points_for(built):
                await self.on_handover(entry)
            return
        fresh = [
            (route, target)
            for route in built
            for target in route.targets
            if handover_key(target.consumer, route.data_class, target.grant_id) not in self.ledger
        ]
        committed: dict[tuple[str, int], int] = {}
        live_topics = sorted({self.topics.source(r.data_class) for r, _ in fresh if not r.held})
        if live_topics and self.committed is not None:
            committed = await self.committed(live_topics)
        # No await from here until every route is installed: the hand-over points are the handler's
        # positions at the instant the new targets become visible to it.
        for route in built:
            # The handler's positions outlive any one route of the class.
            positions = self.positions.setdefault(route.data_class, {})
            self.routes[self.topics.source(route.data_class)] = dataclasses.replace(route, next_offsets=positions)
        # Indexed once: a city catalogue has thousands of new targets and ~9,500 committed partitions.
        committed_partitions: dict[str, set[int]] = {}
        for topic, partition in committed:
            committed_partitions.setdefault(topic, set()).add(partition)
        entries = [self._hand_over(route, target, committed, committed_partitions) for route, target in fresh]
        for entry in entries:
            await self.on_handover(entry)

    def _hand_over(
        self,
        route: ClassRoute,
        target: Target,
        committed: dict[tuple[str, int], int],
        committed_partitions: dict[str, set[int]],
    ) -> Handover:
        if route.held:
            # Periodic: the open window reaches the new subscriber in its batch; its history is what was
            # held before that window began.
            state = self.hold_state(route.data_class) if self.hold_state is not None else None
            live_from = {state.partition: state.since} if state is not None else {}
            return self.ledger.record(target.consumer, route.data_class, target.grant_id, self.topics.held, live_from)
        topic = self.topics.source(route.data_class)
        positions = self.positions[route.data_class]
        partitions = committed_partitions.get(topic, set()) | set(positions)
        live_from = {p: max(committed.get((topic, p), 0), positions.get(p, 0)) for p in sorted(partitions)}
        return self.ledger.record(target.consumer, route.data_class, target.grant_id, topic, live_from)

    async def maintain(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _MAINTAIN_INTERVAL_S)
            self._wake.clear()
            try:
                await self._maintain_once()
            except Exception:
                # Never the end of maintenance: a pass that fails is the next pass's work.
                log.exception("maintaining the routes failed; retrying")

    async def _maintain_once(self) -> None:
        seen = self.grant_events
        now = self.clock()
        due = {r.data_class for r in self.routes.values() if r.valid_until is not None and r.valid_until <= now}
        # Closed classes are retried on every pass until their routes build.
        dirty, self._dirty = self._dirty | due | self.failed, set()
        for code in sorted(dirty):
            await self.rebuild(code)
            if code in self.failed:
                self._dirty.add(code)
            else:
                log.info("routes of %s rebuilt (grant change, expiry or retry)", code)
        if not self._dirty:
            self.grant_events_routed = seen
