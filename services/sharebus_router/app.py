"""The router: a Faust worker hosting the batch data path (``data_path.py``) beside its control side.

- The data path (a confluent-kafka consumer and producer) reads every source topic in batches and
  calls the Kafka-free ``RecordHandler`` per record; its ordering guarantee (produce, then flush,
  then commit) is written down in ``data_path.py``.
- Faust keeps the rest: the process lifecycle, the ``periods`` table and the ``hold`` agent
  (holding.py), the backfill agent, timers (route maintenance, markers, freshness, followers), the
  web endpoints and its sensor. Faust's app id is ``<ns>-router-faust``; the data path's group is
  ``<ns>-router``, whose committed offsets on the sources are the router's progress.
- Faust's ``exactly_once`` mode was not used: it keeps one transactional producer per assigned source
  partition, thousands per worker at city scale. Delivery is at-least-once with a stable record id
  in the headers, so that subscribers (the SDK's Subscriber) drop repeats.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, cast

import faust
from faust.web import Request, Response, View
from prometheus_client import REGISTRY

from sharebus_core.audit_fact import AuditFact
from sharebus_core.backfill_log import latest_events
from sharebus_core.catalogue import Catalogue
from sharebus_core.clock import Clock
from sharebus_core.compacted_log import LogFollower
from sharebus_core.control_log import ControlRejections
from sharebus_core.grant_log import GrantFollower
from sharebus_core.grants import Grant
from sharebus_core.headers import HeaderList
from sharebus_core.kafka import SASL_MECHANISM, KafkaAccess
from sharebus_core.offsets import committed_offsets
from sharebus_core.topic_reader import read_topic
from sharebus_core.topics import TopicNames
from sharebus_provision.replication import cluster_replication
from sharebus_router.acknowledgements import end_process
from sharebus_router.backfill import Backfiller
from sharebus_router.backfill_agent import BackfillDesk, install_backfill
from sharebus_router.data_path import DataPath, DataPathService
from sharebus_router.data_path_config import DataPathConfig
from sharebus_router.data_producer import DataProducer
from sharebus_router.faust_sensor import FAUST_VIEWS_OFF, check_faust_views_off, install_sensor, scrape_guard
from sharebus_router.freshness import FreshnessTracker, decodes
from sharebus_router.grant_metrics import GrantCollector
from sharebus_router.handler import RecordHandler
from sharebus_router.handover import Handover
from sharebus_router.holding import install_holding
from sharebus_router.key_views import key_views
from sharebus_router.metrics import RouterMetrics
from sharebus_router.quality_gate import QualityCounters, QualityGate, QualityScores
from sharebus_router.release import BatchReleaser
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import RouteBuilder
from sharebus_router.schema_cache import SchemaCache
from sharebus_router.settings import RouterSettings
from sharebus_router.workers import install_workers, point_keeper
from sharebus_rules.freshness import FreshnessPolicy

log = logging.getLogger("sharebus.router")


def _on_send_done(future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is None:
        return
    end_process(f"Kafka rejected a delivery ({future.exception()})")


def make_worker(app: faust.App, log_level: str) -> faust.Worker:
    """A worker without faust's terminal spinner.

    At log levels of WARN and above the spinner lowers the root logger to DEBUG so that it can spin
    on every record, which makes aiokafka and faust build a debug log record per event (~7% of the
    router's CPU when profiled). A service writing to a log file has no use for it.
    """
    worker = faust.Worker(app, loglevel=log_level, quiet=True)
    worker.spinner = None
    return worker


def faust_credentials(access: KafkaAccess) -> dict[str, Any]:
    """Faust's (aiokafka's) form of the same identity every confluent-kafka client of the bus uses."""
    if not access.secured:
        return {}
    access.check()
    assert access.password is not None
    credentials = faust.SASLCredentials(
        username=access.username,
        password=access.password.get_secret_value(),
        ssl_context=access.ssl_context(),
        mechanism=SASL_MECHANISM,
    )
    return {"broker_credentials": credentials}


def faust_app_settings(settings: RouterSettings) -> dict[str, Any]:
    """The router's Faust settings; bench/ runs its bare-Faust baseline with the same ones."""
    return {
        "broker": [f"kafka://{server.strip()}" for server in settings.kafka.bootstrap.split(",")],
        **faust_credentials(settings.kafka),
        "key_serializer": "raw",
        "value_serializer": "raw",
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        "producer_linger_ms": settings.producer_linger_ms,
        "producer_max_request_size": settings.max_message_bytes,
        "broker_commit_interval": settings.commit_interval_s,
        "stream_buffer_maxsize": settings.stream_buffer_maxsize,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        "consumer_auto_offset_reset": "earliest",
        "topic_replication_factor": settings.topic_replication_factor or cluster_replication(settings.kafka).factor,
        "store": "memory://",
        "datadir": str(settings.data_dir / settings.namespace),
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        # None of Faust's own views (/router, /table: the periods table's contents, /stats, /graph, ...).
        **FAUST_VIEWS_OFF,
    }


def build_app(settings: RouterSettings, catalogue: Catalogue, schema_ids: Mapping[str, int] | None = None) -> faust.App:
    """The router app. ``schema_ids`` (class code -> id, from provisioning) spares the first records a lookup.

    Raises ``SigningKeyError`` without the control plane's verify key: no grant could be trusted.
    """
    verifier = settings.control_keys().verifier
    # Every web path but /healthz and /readyz answers only the scrape token (ScrapeTokenError without one).
    token = settings.scrape_auth()
    kafka = settings.kafka  # on the listener that does not force re-authentication (RouterSettings.kafka)
    topics = TopicNames(settings.namespace)
    app = faust.App(
        topics.router_faust_id,
        **faust_app_settings(settings),
        web_application_options={"middlewares": [scrape_guard(token)]},
    )
    check_faust_views_off(app)
    metrics = RouterMetrics(REGISTRY)
    install_sensor(app, REGISTRY)  # Faust's families without per-topic/partition series (docs/metrics.md)
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
    clock = Clock(settings.clock_skew_file)

    async def committed(source_topics: list[str]) -> dict[tuple[str, int], int]:
        loop = asyncio.get_running_loop()
        access, group = kafka, topics.router_app_id
        return await loop.run_in_executor(None, committed_offsets, access, group, source_topics)

    async def on_handover(entry: Handover) -> None:
        # Through the data path's producer, in the epoch of the records routed after it: no offset past the
        # point is committed, at revocation or otherwise, before Kafka has the point, so the next owner of
        # the partition reads it before it routes there (handover.py).
        producer.produce(topics.handover, entry.record_key.encode(), entry.to_json(), [])

    builder = RouteBuilder(catalogue, topics, metrics, schemas, public=settings.public_delivery)
    table = RouteTable(catalogue, topics, builder, clock.now, committed, on_handover)
    # Several workers share the source partitions: each records the hand-over points of its own.
    keeper = point_keeper(app, table, topics, kafka, settings.held_partitions, committed)
    REGISTRY.register(GrantCollector(table.grants, table.clock, settings.answer_deadline_working_days))
    policy = FreshnessPolicy(
        dt.timedelta(seconds=settings.freshness_grace_s), dt.timedelta(seconds=settings.realtime_max_silence_s)
    )
    freshness = FreshnessTracker(catalogue, clock.time, policy)
    REGISTRY.register(freshness)
    follower: list[LogFollower] = []
    # Reference rules ask another class's keys: one followed view per referenced class (key_views.py).
    views = key_views(catalogue, topics, kafka, settings.reference_keys_max)
    quality = QualityGate(catalogue, clock.now, views)
    REGISTRY.register(QualityCounters(quality))
    window = dt.timedelta(seconds=settings.quality_delivery_window_s)
    REGISTRY.register(QualityScores(catalogue, quality, freshness, window))

    async def send(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        """The control side's sends (releases, backfills, markers, points): Faust flushes them before it commits."""
        future = await app.producer.send(topic, key, value, None, None, headers)
        cast(asyncio.Future[Any], future).add_done_callback(_on_send_done)

    async def flush() -> None:
        """Waits until Kafka has acknowledged every control-side send (a release's dead letters, say)."""
        await app.producer.flush()

    data_config = DataPathConfig(
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
    producer = DataProducer(kafka, data_config)
    handler = RecordHandler(
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
        kafka,
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

    async def follow_grants() -> None:
        loop = asyncio.get_running_loop()

        def on_grant(grant: Grant) -> None:
            loop.call_soon_threadsafe(table.on_grant, grant)

        def on_closed(grant_id: str) -> None:
            loop.call_soon_threadsafe(table.on_closed, grant_id)

        def audit_rejection(fact: AuditFact) -> None:
            key, value = fact.encode()
            asyncio.run_coroutine_threadsafe(send(topics.audit_facts, key, value, []), loop)

        # A grant event the control plane did not sign changes no route: counted, logged and audited.
        rejections = ControlRejections("router", REGISTRY, audit_rejection)
        grants = GrantFollower(kafka, topics.grants, on_grant, verifier, rejections, on_closed)
        follower.append(grants.start())
        await loop.run_in_executor(None, follower[0].caught_up.wait)
        # Routing waits for every referenced class's keys too, so no record meets a cold view; later,
        # a view that falls behind fails its reference checks closed (key_views.py).
        for view in views.values():
            follower.append(view.start())
        for view in views.values():
            await loop.run_in_executor(None, view.caught_up.wait)
        table.ledger.load(await loop.run_in_executor(None, read_topic, kafka, topics.handover))
        # A class whose routes cannot be built is installed closed (denying) and retried; it never
        # keeps the router from becoming ready (route_table.py) once the start-up grace is over.
        grace_ends = loop.time() + settings.route_build_grace_s
        await table.build_all(ready_if_closed=False)
        while not table.ready.is_set():
            log.warning("routes of %s cannot be built yet; retrying in 2 s", sorted(table.failed))
            await asyncio.sleep(2)
            await table.build_all(ready_if_closed=loop.time() >= grace_ends)
        log.info("routes built for %d data classes (%d closed); routing", len(table.routes), len(table.failed))
        # Beside routing, which must not wait for it: it checks records against the routes just built.
        seeding.append(loop.create_task(seed_freshness()))
        await table.maintain()

    app.task(follow_grants)
    seeding: list[asyncio.Task[None]] = []
    sources = {topics.source(code): code for code in catalogue.data_classes}

    async def seed_freshness() -> None:
        try:
            await freshness.seed_from_log(kafka, sources, decodes(handler))
        except Exception:
            # Freshness then counts from this start (and the freshness owner's refresh tries again).
            log.exception("could not read the newest record of each source topic; freshness starts unseeded")

    async def supervise_followers() -> None:
        # A follower that failed restarts itself; one whose thread ended is started again here.
        for running in follower:
            running.ensure_running()
            metrics.follower_up.labels(running.name).set(1 if running.up else 0)

    app.timer(1.0)(supervise_followers)

    path = DataPath(
        kafka,
        data_config,
        producer,
        handler.handle,
        keeper,
        metrics,
        handler.tally.flush,
        unreadable=handler.unreadable,
    )

    async def host_data_path() -> None:
        # Started once Faust runs, stopped (with a last flush and commit) before Faust's own clients.
        await app.add_runtime_dependency(DataPathService(path, table.ready))

    app.task(host_data_path)

    install_workers(app, keeper, freshness, kafka, settings.freshness_refresh_s, decodes(handler))

    table.hold_state = hold_state
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

    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        return view.json({"status": "ok"})

    # Open (scrape_guard lets it through for orchestrators), but only the token's holders see why: the
    # body names closed classes and the worker's partitions.
    @app.page("/readyz")
    async def readyz(view: View, request: Request) -> Response:
        assigned = app.consumer.assignment()
        # Not ready while a follower is down: the routes may lag the grants without anyone knowing.
        followers_up = bool(follower) and all(running.up for running in follower)
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

    def close(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> Awaitable[None]:
        for running in follower:
            running.stop()
        return schemas.close()

    # mode's signal stubs reject any concrete receiver signature; this one is what mode calls.
    app.on_before_shutdown.connect(close)  # type: ignore[arg-type]

    return app
