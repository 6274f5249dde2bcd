"""What several router workers in one consumer group need: see docs/router-workers.md.

- Hand-over points per source partition, written by the partition's owner (``live_points.py``);
  the data path tells the keeper of its source partitions (``data_path.py``, which also commits on
  revocation), and Faust of its held and backfill partitions (here).
- Freshness from one worker: the owner of the backfill topic's only partition (``freshness.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError, read_topic
from sharebus_core.topics import TopicNames
from sharebus_router.freshness import FreshnessTracker, Valid
from sharebus_router.live_points import PointKeeper
from sharebus_router.route_table import RouteTable

log = logging.getLogger(__name__)


def point_keeper(
    app: faust.App,
    table: RouteTable,
    topics: TopicNames,
    access: KafkaAccess,
    held_partitions: int,
    committed: Callable[[list[str]], Awaitable[dict[tuple[str, int], int]]],
) -> PointKeeper:
    async def read_ledger() -> list[Any]:
        return await asyncio.get_running_loop().run_in_executor(None, read_topic, access, topics.handover)

    def recovered() -> bool:
        # Faust ends a rebalance only once the tables are recovered (its recovery's "completed" stays
        # set from the previous one): only then is the periods table's state the held partition's.
        tables: Any = app.tables  # TableManagerT's interface omits the recovery service
        return not app.rebalancing and bool(tables.recovery.completed.is_set())

    keeper = PointKeeper(table, topics, held_partitions, committed, table.on_handover, read_ledger, recovered)
    table.points_for = keeper.points_for
    return keeper


def install_workers(
    app: faust.App,
    keeper: PointKeeper,
    freshness: FreshnessTracker,
    access: KafkaAccess,
    refresh_s: float,
    valid: Valid,
) -> None:
    """Wires the keeper to Faust's rebalances (held and backfill partitions) and the freshness owner."""
    topics = keeper.topics
    consumer: Any = app.consumer
    original = consumer.on_partitions_revoked

    async def on_partitions_revoked(revoked: set[Any]) -> None:
        # An instance attribute shadows Faust's method: the keeper forgets before Faust hands them on.
        keeper.on_revoked(revoked)
        await original(revoked)

    consumer.on_partitions_revoked = on_partitions_revoked

    async def on_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        keeper.on_assigned(args[0] if args else kwargs.get("assigned", ()))

    # mode's signal stubs reject any concrete receiver signature; this one is what mode calls.
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    freshness.active = lambda: keeper.owns(topics.backfill, 0)
    freshness.releases = keeper.releases
    sources = {topics.source(code): code for code in keeper.table.catalogue.data_classes}

    async def keep_points() -> None:
        await keeper.sweep_held()

    app.timer(1.0)(keep_points)

    async def refresh_freshness() -> None:
        if not freshness.active():
            return
        if not keeper.table.ready.is_set():
            return  # the records are checked against the routes: none before they are built
        try:
            # Only from records the router would route: a provider sending garbage must not look fresh.
            await freshness.seed_from_log(access, sources, valid)
        except TopicReadError:
            log.warning("could not re-read the newest record of each source topic; freshness keeps its view")
        except Exception:
            # A timer that raises ends the Faust worker: freshness is not worth that.
            log.exception("the freshness refresh failed; freshness keeps its view")

    app.timer(refresh_s)(refresh_freshness)
