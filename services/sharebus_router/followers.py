"""The router's log followers: the signed grants and each referenced class's keys (key_views.py).

Routing waits until every one has caught up and the routes are built (``follow``); a follower whose
thread ended is started again (``supervise``), and ``/readyz`` says not ready while one is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from sharebus_core.audit_fact import AuditFact
from sharebus_core.compacted_log import LogFollower
from sharebus_core.control_log import ControlRejections
from sharebus_core.grant_log import GrantFollower
from sharebus_core.grants import Grant
from sharebus_core.headers import HeaderList
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Verifier
from sharebus_core.topic_reader import read_topic
from sharebus_core.topics import TopicNames
from sharebus_router.key_views import KeyFollower
from sharebus_router.metrics import RouterMetrics
from sharebus_router.route_table import RouteTable

# The router's own lines, under the name app.py logs them with.
log = logging.getLogger("sharebus.router")

# Faust names a timer after its function's qualified name, in its logs ("Timer ... woke up too late");
# the supervisor keeps the name it had in app.py's build_app, which log searches and alerts may use.
SUPERVISOR_TIMER = "sharebus_router.app.build_app.<locals>.supervise_followers"

# The control side's sends (assembly.py's ``control_sends``).
Send = Callable[[str, bytes | None, bytes | None, HeaderList], Coroutine[Any, Any, None]]


class Followers:
    def __init__(
        self,
        access: KafkaAccess,
        topics: TopicNames,
        verifier: Verifier,
        table: RouteTable,
        views: Mapping[str, KeyFollower],
        send: Send,
        registry: CollectorRegistry,
    ) -> None:
        """``send``: the control side's (a rejected grant event's audit fact); ``registry``: where the
        rejections are counted."""
        self.access = access
        self.topics = topics
        self.verifier = verifier
        self.table = table
        self.views = views
        self.send = send
        self.registry = registry
        # Started ones, the grant follower first.
        self.running: list[LogFollower] = []

    @property
    def up(self) -> bool:
        """Whether every follower runs and has caught up (none started yet: not up)."""
        return bool(self.running) and all(running.up for running in self.running)

    async def follow(self, route_build_grace_s: float, on_routed: Callable[[], None]) -> None:
        """Follows the grants and the referenced keys, builds every route, then maintains them; ``on_routed``:
        called once the routes are built, as routing starts."""
        loop = asyncio.get_running_loop()
        table, topics, access = self.table, self.topics, self.access

        def on_grant(grant: Grant) -> None:
            loop.call_soon_threadsafe(table.on_grant, grant)

        def on_closed(grant_id: str) -> None:
            loop.call_soon_threadsafe(table.on_closed, grant_id)

        def audit_rejection(fact: AuditFact) -> None:
            key, value = fact.encode()
            asyncio.run_coroutine_threadsafe(self.send(topics.audit_facts, key, value, []), loop)

        # A grant event the control plane did not sign changes no route: counted, logged and audited.
        rejections = ControlRejections("router", self.registry, audit_rejection)
        grants = GrantFollower(access, topics.grants, on_grant, self.verifier, rejections, on_closed)
        self.running.append(grants.start())
        await loop.run_in_executor(None, self.running[0].caught_up.wait)
        # Routing waits for every referenced class's keys too, so no record meets a cold view; later,
        # a view that falls behind fails its reference checks closed (key_views.py).
        for view in self.views.values():
            self.running.append(view.start())
        for view in self.views.values():
            await loop.run_in_executor(None, view.caught_up.wait)
        table.ledger.load(await loop.run_in_executor(None, read_topic, access, topics.handover))
        # A class whose routes cannot be built is installed closed (denying) and retried; it never
        # keeps the router from becoming ready (route_table.py) once the start-up grace is over.
        grace_ends = loop.time() + route_build_grace_s
        await table.build_all(ready_if_closed=False)
        while not table.ready.is_set():
            log.warning("routes of %s cannot be built yet; retrying in 2 s", sorted(table.failed))
            await asyncio.sleep(2)
            await table.build_all(ready_if_closed=loop.time() >= grace_ends)
        log.info("routes built for %d data classes (%d closed); routing", len(table.routes), len(table.failed))
        on_routed()
        await table.maintain()

    def install(
        self,
        app: faust.App,
        metrics: RouterMetrics,
        route_build_grace_s: float,
        seed: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        """Follows from Faust's start, and supervises every second; ``seed``: started beside routing once the
        routes are built (the freshness seeding, which checks records against them)."""
        seeding: list[asyncio.Task[None]] = []

        async def follow_grants() -> None:
            loop = asyncio.get_running_loop()
            await self.follow(route_build_grace_s, lambda: seeding.append(loop.create_task(seed())))

        app.task(follow_grants)

        async def supervise_followers() -> None:
            # A follower that failed restarts itself; one whose thread ended is started again here.
            for running in self.running:
                running.ensure_running()
                metrics.follower_up.labels(running.name).set(1 if running.up else 0)

        app.timer(1.0, name=SUPERVISOR_TIMER)(supervise_followers)

    def stop(self) -> None:
        for running in self.running:
            running.stop()
