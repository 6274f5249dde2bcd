"""The router: a Faust worker hosting the batch data path (``data_path.py``) beside its control side.

- The data path (a confluent-kafka consumer and producer) reads every source topic in batches and
  calls the Kafka-free ``RecordHandler`` per record; its ordering guarantee (produce, then flush,
  then commit) is written down in ``data_path.py``.
- Faust keeps the rest: the process lifecycle, the ``periods`` table and the ``hold`` agent
  (holding.py), the backfill agent, timers (route maintenance, markers, freshness, followers), the
  web endpoints and its sensor. Faust's app id is ``<ns>-router-faust``; the data path's group is
  ``<ns>-router``, whose committed offsets on the sources are the router's progress.
- ``build_app`` puts the parts together in the order below; they are built in assembly.py, the log
  followers in followers.py, ``/healthz`` and ``/readyz`` in probes.py.
- Faust's ``exactly_once`` mode was not used: it keeps one transactional producer per assigned source
  partition, thousands per worker at city scale. Delivery is at-least-once with a stable record id
  in the headers, so that subscribers (the SDK's Subscriber) drop repeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from prometheus_client import REGISTRY

from sharebus_core.catalogue import Catalogue
from sharebus_core.clock import Clock
from sharebus_core.kafka import SASL_MECHANISM, KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_provision.replication import cluster_replication
from sharebus_router.assembly import (
    close_on_shutdown,
    committed_reader,
    control_sends,
    data_path_config,
    freshness_and_quality,
    freshness_seeder,
    install_backfiller,
    install_data_path,
    install_periodic,
    record_handler,
    schema_cache,
)
from sharebus_router.data_producer import DataProducer
from sharebus_router.faust_sensor import FAUST_VIEWS_OFF, check_faust_views_off, install_sensor, scrape_guard
from sharebus_router.followers import Followers
from sharebus_router.freshness import decodes
from sharebus_router.grant_metrics import GrantCollector
from sharebus_router.handover import Handover
from sharebus_router.metrics import RouterMetrics
from sharebus_router.probes import install_probes
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import RouteBuilder
from sharebus_router.settings import RouterSettings
from sharebus_router.workers import install_workers, point_keeper


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
    schemas = schema_cache(settings, catalogue, topics, schema_ids)
    clock = Clock(settings.clock_skew_file)
    committed = committed_reader(kafka, topics)

    async def on_handover(entry: Handover) -> None:
        # Through the data path's producer, in the epoch of the records routed after it: no offset past the
        # point is committed, at revocation or otherwise, before Kafka has the point, so the next owner of
        # the partition reads it before it routes there (handover.py).
        producer.produce(topics.handover, entry.record_key.encode(), entry.to_json(), [])

    builder = RouteBuilder(catalogue, topics, metrics, schemas, public=settings.public_delivery)
    table = RouteTable(catalogue, topics, builder, clock.now, committed, on_handover)
    # Several workers share the source partitions: each records the hand-over points of its own.
    keeper = point_keeper(app, table, topics, kafka, settings.held_partitions, committed)
    REGISTRY.register(
        GrantCollector(
            table.grants, table.clock, settings.answer_deadline_working_days, catalogue=lambda: table.catalogue
        )
    )
    freshness, views, quality = freshness_and_quality(settings, catalogue, topics, clock)
    send, flush = control_sends(app)
    data_config = data_path_config(settings, catalogue, topics)
    producer = DataProducer(kafka, data_config)
    handler = record_handler(
        settings, topics, catalogue, builder, table, schemas, metrics, producer, clock, freshness, quality
    )
    hold_state = install_periodic(
        app, settings, catalogue, topics, table, keeper, handler, send, flush, metrics, freshness, clock
    )
    followers = Followers(kafka, topics, verifier, table, views, send, REGISTRY)
    followers.install(
        app, metrics, settings.route_build_grace_s, freshness_seeder(freshness, kafka, catalogue, topics, handler)
    )
    path = install_data_path(app, kafka, data_config, producer, handler, keeper, metrics, table.ready)
    install_workers(app, keeper, freshness, kafka, settings.freshness_refresh_s, decodes(handler))

    table.hold_state = hold_state
    install_backfiller(app, settings, topics, table, keeper, handler, send, metrics, clock)
    install_probes(app, token, topics, table, keeper, path, followers, clock)
    close_on_shutdown(app, followers, schemas)
    return app
