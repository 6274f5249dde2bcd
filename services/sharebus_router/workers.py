"""What several router workers in one consumer group need besides Faust: see docs/router-workers.md.

- Hand-over points per source partition, written by the partition's owner (``live_points.py``).
- A commit on revocation: Faust forgets a revoked partition's acknowledged offsets before it
  waits for its agents, so everything routed since the last commit (up to a second's worth) was
  routed again by the next owner. Here, before Faust's own handling, the flow is stopped, the
  in-flight records are settled (delivered, audited, acknowledged), the producer is flushed and the
  acknowledged offsets are committed: a worker joining or leaving repeats almost nothing.
- Freshness from one worker: the owner of the backfill topic's only partition (``freshness.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError, last_record_times, read_topic
from sharebus_core.topics import TopicNames
from sharebus_router.freshness import FreshnessTracker
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
    settle: Callable[[], Awaitable[None]],
    freshness: FreshnessTracker,
    access: KafkaAccess,
    refresh_s: float,
) -> None:
    """Wires the keeper to rebalances, the commit on revocation and the freshness owner."""
    topics = keeper.topics
    consumer: Any = app.consumer
    original = consumer.on_partitions_revoked
    session_s = float(app.conf.broker_session_timeout)

    async def on_partitions_revoked(revoked: set[Any]) -> None:
        # An instance attribute shadows Faust's method: this runs before Faust drops the acks.
        try:
            consumer.stop_flow()
            app.flow_control.suspend()
            app.flow_control.clear()
            try:
                await asyncio.wait_for(_settled(consumer, settle), timeout=session_s / 2)
            except TimeoutError:
                log.warning("records still in flight at revocation; committing what is acknowledged")
            # Faust's commit flushes the producer first: only offsets whose deliveries are in Kafka.
            await consumer.commit()
        except Exception:
            # Not committing only costs repeats (routed again by the next owner), never a loss.
            log.exception("committing on revocation failed; the next owner routes those records again")
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
        loop = asyncio.get_running_loop()
        try:
            newest = await loop.run_in_executor(None, last_record_times, access, list(sources))
        except TopicReadError:
            log.warning("could not re-read the newest record of each source topic; freshness keeps its view")
            return
        freshness.seed({sources[topic]: stamp for topic, stamp in newest.items()})

    app.timer(refresh_s)(refresh_freshness)


async def _settled(consumer: Any, settle: Callable[[], Awaitable[None]]) -> None:
    """Sends the audit facts of records routed so far (acknowledging them) until none is in flight."""
    while True:
        await settle()
        if not consumer._unacked_messages:
            return
        await asyncio.sleep(0.01)
