"""The router's ``/healthz`` and ``/readyz``: alive, and ready to route (docs/router-workers.md)."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View

from sharebus_core.clock import Clock
from sharebus_core.scrape_auth import ScrapeToken
from sharebus_core.topics import TopicNames
from sharebus_router.data_path import DataPath
from sharebus_router.followers import Followers
from sharebus_router.live_points import PointKeeper
from sharebus_router.route_table import RouteTable


def install_probes(
    app: faust.App,
    token: ScrapeToken,
    topics: TopicNames,
    table: RouteTable,
    keeper: PointKeeper,
    path: DataPath,
    followers: Followers,
    clock: Clock,
) -> None:
    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        return view.json({"status": "ok"})

    # Open (scrape_guard lets it through for orchestrators), but only the token's holders see why: the
    # body names closed classes and the worker's partitions.
    @app.page("/readyz")
    async def readyz(view: View, request: Request) -> Response:
        assigned = app.consumer.assignment()
        # Not ready while a follower is down: the routes may lag the grants without anyone knowing.
        followers_up = followers.up
        # Joined and claimed: a source partition routes only once its hand-over points are recorded.
        unclaimed = keeper.unclaimed()
        joined = bool(assigned) and path.joined and not unclaimed and not app.rebalancing
        ready = joined and table.ready.is_set() and followers_up
        body = {
            "ready": ready,
            "assigned_partitions": len(assigned) + len(path.assigned),
            "source_partitions": len(path.assigned),
            "unclaimed_partitions": unclaimed,
            "records_routed": path.records_routed,
            "routes_built": table.ready.is_set(),
            "followers_up": followers_up,
            "routes_closed": sorted(table.failed),
            "grant_events": table.grant_events,
            "grant_events_routed": table.grant_events_routed,
            # Which worker does what, with several (docs/router-workers.md).
            "held_partitions": sorted(keeper.owned_held),
            "serves_backfills": keeper.owns(topics.backfill, 0),
            # The router's clock (skewed in drills and tests), so that a caller can wait until a move took.
            "clock": clock.time(),
        }
        shown = body if token.admits(request.headers.get("Authorization")) else {"ready": ready}
        return view.json(shown, status=200 if ready else 503)
