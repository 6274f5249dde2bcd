"""The router's live view: grants as the log says now, and the routes that follow from them.

Grant events arrive from a follower thread (``on_grant``, called in the event loop). A changed
grant marks its class dirty; ``maintain`` rebuilds dirty classes and those whose grants expire,
so approvals, revocations and expiries take effect within about a second, without a restart.
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

    def on_grant(self, grant: Grant) -> None:
        self.grant_events += 1
        self._grants[grant.grant_id] = grant
        if grant.data_class in self.catalogue.data_classes:
            self._dirty.add(grant.data_class)
            self._wake.set()
        else:
            log.warning("grant %s names unknown data class %s; ignored", grant.grant_id, grant.data_class)

    async def on_handover(self, entry: Handover) -> None:
        if self._on_handover is not None:
            await self._on_handover(entry)

    def grants(self) -> list[Grant]:
        return list(self._grants.values())

    def grants_of(self, class_code: str) -> dict[str, list[Grant]]:
        by_consumer: dict[str, list[Grant]] = defaultdict(list)
        for grant in self._grants.values():
            if grant.data_class == class_code:
                by_consumer[grant.consumer].append(grant)
        return dict(by_consumer)

    async def rebuild(self, class_code: str) -> None:
        await self._install([await self.builder.build(class_code, self.grants_of(class_code), self.clock())])

    async def build_all(self) -> None:
        seen = self.grant_events
        self._dirty.clear()
        now = self.clock()
        await self._install([await self.builder.build(c, self.grants_of(c), now) for c in self.catalogue.data_classes])
        self.grant_events_routed = seen
        self.ready.set()

    async def _install(self, built: list[ClassRoute]) -> None:
        """Installs routes; a target never live before gets its hand-over point in the same step."""
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
        entries = [self._hand_over(route, target, committed) for route, target in fresh]
        for entry in entries:
            await self.on_handover(entry)

    def _hand_over(self, route: ClassRoute, target: Target, committed: dict[tuple[str, int], int]) -> Handover:
        if route.held:
            # Periodic: the open window reaches the new subscriber in its batch; its history is what was
            # held before that window began.
            state = self.hold_state(route.data_class) if self.hold_state is not None else None
            live_from = {state.partition: state.since} if state is not None else {}
            return self.ledger.record(target.consumer, route.data_class, target.grant_id, self.topics.held, live_from)
        topic = self.topics.source(route.data_class)
        positions = self.positions[route.data_class]
        partitions = {p for t, p in committed if t == topic} | set(positions)
        live_from = {p: max(committed.get((topic, p), 0), positions.get(p, 0)) for p in sorted(partitions)}
        return self.ledger.record(target.consumer, route.data_class, target.grant_id, topic, live_from)

    async def maintain(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _MAINTAIN_INTERVAL_S)
            self._wake.clear()
            seen = self.grant_events
            now = self.clock()
            due = {r.data_class for r in self.routes.values() if r.valid_until is not None and r.valid_until <= now}
            dirty, self._dirty = self._dirty | due, set()
            for code in sorted(dirty):
                try:
                    await self.rebuild(code)
                except Exception:
                    # The old route stays in force; the class is retried on the next pass.
                    log.exception("rebuilding the routes of %s failed; retrying", code)
                    self._dirty.add(code)
                    continue
                log.info("routes of %s rebuilt (grant change or expiry)", code)
            if not self._dirty:
                self.grant_events_routed = seen
