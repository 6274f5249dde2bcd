"""The router's parts as ``build_app`` (app.py) puts them together, each from the settings and the parts
built before it; the order of their Faust agents, tasks and timers is ``build_app``'s."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, cast

import faust
from prometheus_client import REGISTRY

from sharebus_core.backfill_log import latest_events
from sharebus_core.catalogue import Catalogue
from sharebus_core.clock import Clock
from sharebus_core.headers import HeaderList
from sharebus_core.kafka import KafkaAccess
from sharebus_core.offsets import committed_offsets
from sharebus_core.topics import TopicNames
from sharebus_router.acknowledgements import end_process
from sharebus_router.backfill import Backfiller
from sharebus_router.backfill_agent import BackfillDesk, install_backfill
from sharebus_router.data_path import DataPath, DataPathService
from sharebus_router.data_path_config import DataPathConfig
from sharebus_router.data_producer import DataProducer
from sharebus_router.followers import Followers, Send
from sharebus_router.freshness import FreshnessTracker, decodes
from sharebus_router.handler import RecordHandler
from sharebus_router.holding import install_holding
from sharebus_router.key_views import KeyFollower, key_views
from sharebus_router.live_points import PointKeeper
from sharebus_router.metrics import RouterMetrics
from sharebus_router.periodic import HoldState
from sharebus_router.quality_gate import QualityCounters, QualityGate, QualityScores
from sharebus_router.release import BatchReleaser
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import RouteBuilder
from sharebus_router.schema_cache import SchemaCache
from sharebus_router.settings import RouterSettings
from sharebus_rules.freshness import FreshnessPolicy

# The router's own lines, under the name app.py logs them with.
log = logging.getLogger("sharebus.router")


def on_send_done(future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is None:
        return
    end_process(f"Kafka rejected a delivery ({future.exception()})")


def schema_cache(
    settings: RouterSettings, catalogue: Catalogue, topics: TopicNames, schema_ids: Mapping[str, int] | None
) -> SchemaCache:
    schemas = SchemaCache(
        settings.registry_url,
        settings.registry_timeout_s,
        settings.registry_auth,
        negative_ttl_s=settings.unknown_schema_ttl_s,
        negative_entries=settings.unknown_schema_cache_size,
        registered_prefix=f"{topics.namespace}.dlv.",
    )
    for code, schema_id in (schema_ids or {}).items():
        schemas.remember(schema_id, catalogue.schema(code).text, topics.value_subject(code))
    return schemas


def committed_reader(
    access: KafkaAccess, topics: TopicNames
) -> Callable[[list[str]], Awaitable[dict[tuple[str, int], int]]]:
    """The data path's group's committed offsets on source topics (where a claimed partition starts)."""

    async def committed(source_topics: list[str]) -> dict[tuple[str, int], int]:
        loop = asyncio.get_running_loop()
        group = topics.router_app_id
        return await loop.run_in_executor(None, committed_offsets, access, group, source_topics)

    return committed


def freshness_and_quality(
    settings: RouterSettings, catalogue: Catalogue, topics: TopicNames, clock: Clock
) -> tuple[FreshnessTracker, Mapping[str, KeyFollower], QualityGate]:
    """The freshness tracker, the followed key views of referenced classes and the quality gate, with
    their collectors registered."""
    policy = FreshnessPolicy(
        dt.timedelta(seconds=settings.freshness_grace_s), dt.timedelta(seconds=settings.realtime_max_silence_s)
    )
    freshness = FreshnessTracker(catalogue, clock.time, policy)
    REGISTRY.register(freshness)
    # Reference rules ask another class's keys: one followed view per referenced class (key_views.py).
    views = key_views(catalogue, topics, settings.kafka, settings.reference_keys_max)
    quality = QualityGate(catalogue, clock.now, views)
    REGISTRY.register(QualityCounters(quality))
    window = dt.timedelta(seconds=settings.quality_delivery_window_s)
    REGISTRY.register(QualityScores(catalogue, quality, freshness, window))
    return freshness, views, quality


def control_sends(app: faust.App) -> tuple[Send, Callable[[], Awaitable[None]]]:
    async def send(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        """The control side's sends (releases, backfills, markers, points): Faust flushes them before it commits."""
        future = await app.producer.send(topic, key, value, None, None, headers)
        cast(asyncio.Future[Any], future).add_done_callback(on_send_done)

    async def flush() -> None:
        """Waits until Kafka has acknowledged every control-side send (a release's dead letters, say)."""
        await app.producer.flush()

    return send, flush


def data_path_config(settings: RouterSettings, catalogue: Catalogue, topics: TopicNames) -> DataPathConfig:
    return DataPathConfig(
        group=topics.router_app_id,
        topics=[topics.source(code) for code in catalogue.data_classes],
        audit_topic=topics.audit_facts,
        audit_max_bytes=settings.audit_message_max_bytes,
        batch_max=settings.batch_max_records,
        commit_interval_s=settings.commit_interval_s,
        session_timeout_s=settings.session_timeout_s,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        linger_ms=settings.producer_linger_ms,
        max_message_bytes=settings.max_message_bytes,
        producers=settings.data_producers,
    )


def record_handler(
    settings: RouterSettings,
    topics: TopicNames,
    catalogue: Catalogue,
    builder: RouteBuilder,
    table: RouteTable,
    schemas: SchemaCache,
    metrics: RouterMetrics,
    producer: DataProducer,
    clock: Clock,
    freshness: FreshnessTracker,
    quality: QualityGate,
) -> RecordHandler:
    return RecordHandler(
        table.routes,
        schemas,
        metrics,
        topics.dead_letter,
        producer.send,
        catalogue.data_classes,
        held_topic=topics.held,
        clock=clock.time,
        last_seen=freshness.last,
        max_message_bytes=settings.max_message_bytes,
        quality=quality,
        whole=builder.whole,
    )


def install_periodic(
    app: faust.App,
    settings: RouterSettings,
    catalogue: Catalogue,
    topics: TopicNames,
    table: RouteTable,
    keeper: PointKeeper,
    handler: RecordHandler,
    send: Send,
    flush: Callable[[], Awaitable[None]],
    metrics: RouterMetrics,
    freshness: FreshnessTracker,
    clock: Clock,
) -> Callable[[str], HoldState | None]:
    """The releaser and the holding of periodic classes, wired to the keeper; returns the hold state's reader."""
    releaser = BatchReleaser(
        table.routes,
        topics.source,
        handler,
        send,
        topics.audit_facts,
        metrics,
        freshness,
        clock.time,
        settings.audit_message_max_bytes,
        flush=flush,
    )
    hold_state = install_holding(
        app,
        catalogue,
        topics.held,
        settings.held_partitions,
        settings.kafka,
        table,
        releaser,
        clock.now,
        clock.refresh,
        releases=keeper.releases,
        lacking=keeper.lacking_held,
        ownership=lambda: keeper.held_generation,
        releasing=keeper.releasing,
    )
    keeper.hold_state = hold_state
    return hold_state


def install_data_path(
    app: faust.App,
    access: KafkaAccess,
    config: DataPathConfig,
    producer: DataProducer,
    handler: RecordHandler,
    keeper: PointKeeper,
    metrics: RouterMetrics,
    ready: asyncio.Event,
) -> DataPath:
    path = DataPath(
        access,
        config,
        producer,
        handler.handle,
        keeper,
        metrics,
        handler.tally.flush,
        unreadable=handler.unreadable,
    )

    async def host_data_path() -> None:
        # Started once Faust runs, stopped (with a last flush and commit) before Faust's own clients.
        await app.add_runtime_dependency(DataPathService(path, ready))

    app.task(host_data_path)
    return path


def freshness_seeder(
    freshness: FreshnessTracker, access: KafkaAccess, catalogue: Catalogue, topics: TopicNames, handler: RecordHandler
) -> Callable[[], Coroutine[Any, Any, None]]:
    sources = {topics.source(code): code for code in catalogue.data_classes}

    async def seed_freshness() -> None:
        try:
            await freshness.seed_from_log(access, sources, decodes(handler))
        except Exception:
            # Freshness then counts from this start (and the freshness owner's refresh tries again).
            log.exception("could not read the newest record of each source topic; freshness starts unseeded")

    return seed_freshness


def install_backfiller(
    app: faust.App,
    settings: RouterSettings,
    topics: TopicNames,
    table: RouteTable,
    keeper: PointKeeper,
    handler: RecordHandler,
    send: Send,
    metrics: RouterMetrics,
    clock: Clock,
) -> None:
    kafka = settings.kafka
    backfiller = Backfiller(table, topics, handler, send, metrics, kafka, settings.audit_message_max_bytes)
    backfiller.refresh = keeper.refresh  # other workers write the points of their partitions
    metrics.backfill_records.serving = lambda: keeper.owns(topics.backfill, 0)
    metrics.backfill_records.entitled = table.entitled
    desk = BackfillDesk(
        backfiller,
        topics,
        lambda: latest_events(kafka, topics.backfill),
        send,
        lambda: app.producer.flush(),  # Faust makes its producer when first asked: not here
        clock.now,
        settings.backfill_stall_s,
    )
    install_backfill(app, desk, keeper, table.ready)


def close_on_shutdown(app: faust.App, followers: Followers, schemas: SchemaCache) -> None:
    def close(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> Awaitable[None]:
        followers.stop()
        return schemas.close()

    # mode's signal stubs reject any concrete receiver signature; this one is what mode calls.
    app.on_before_shutdown.connect(close)  # type: ignore[arg-type]
