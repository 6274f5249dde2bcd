"""The router's Faust sensor: what operators read of Faust, without a series per topic or partition.

Faust's own Prometheus sensor (``faust.sensors.prometheus``) labels messages, offsets and sends by
topic and partition. Over a city catalogue (3,170 source topics, 3 partitions each, 900 delivery
topics) that was 59,593 series and 7.5 MB per scrape. This sensor keeps the same family names (the
dashboards and alerts query them), with the per-topic and per-partition families left out: per-class
traffic is in ``sharebus_records_received_total``, and per-topic lag is the monitor's
``sharebus_consumer_lag_records``.

The router's web server answers only holders of the bus's scrape token, but for ``/healthz`` and
``/readyz`` (``scrape_guard``; /readyz tells an anonymous caller only whether it is ready), and serves
none of Faust's own views (``/router``, ``/table``, ``/stats``, ``/graph``, ``/performance``): the
``periods`` table and the worker's assignment are nobody's business over HTTP (``FAUST_VIEWS_OFF``,
``check_faust_views_off``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, cast

import faust
from aiohttp import web
from faust.sensors.monitor import Monitor
from faust.types import TP, AppT, CollectionT, EventT, Message, ProducerT, RecordMetadata, StreamT
from faust.types.assignor import PartitionAssignorT
from faust.types.transports import ConsumerT
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sharebus_core.errors import SharebusError
from sharebus_core.exposition import scrape
from sharebus_core.scrape_auth import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS, ScrapeToken

# Faust's buckets (milliseconds), so histograms read as before.
_MS_BUCKETS = (5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)


# Faust's built-in views, each behind its own setting; all off (Faust serves /router and /table by default).
FAUST_VIEW_FLAGS = (
    "web_router_enabled",
    "web_tables_enabled",
    "web_stats_enabled",
    "web_graph_enabled",
    "web_metrics_enabled",
)
FAUST_VIEWS_OFF: dict[str, bool] = dict.fromkeys(FAUST_VIEW_FLAGS, False)
# The only paths that answer without the scrape token (their bodies reduced: app.py's readyz).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaustViewsEnabled(SharebusError, RuntimeError):
    """A Faust view was switched back on (its ``APP_WEB_*_ENABLED`` variable wins over the app's settings)."""


def check_faust_views_off(app: faust.App) -> None:
    """Refuses (``FaustViewsEnabled``) an app that would serve one of Faust's own views.

    Faust reads ``APP_WEB_TABLES_ENABLED`` and the like from the environment over the app's own
    settings, so the settings alone do not keep them off.
    """
    enabled = [flag for flag in FAUST_VIEW_FLAGS if getattr(app.conf, flag)]
    if enabled:
        variables = ", ".join(f"APP_{flag.upper()}" for flag in enabled)
        raise FaustViewsEnabled(
            f"Faust's own web views would be served ({', '.join(enabled)}): unset {variables}; the router "
            "serves only /metrics, /healthz and /readyz"
        )


def scrape_guard(token: ScrapeToken, open_paths: Collection[str] = OPEN_PATHS) -> Any:
    """An aiohttp middleware for the router's web server (Faust's ``web_application_options``): every
    path but ``open_paths`` answers 401 without ``Authorization: Bearer <scrape token>``."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths or token.admits(request.headers.get("Authorization")):
            return await handler(request)
        return web.Response(status=401, body=UNAUTHORIZED_BODY, headers=UNAUTHORIZED_HEADERS)

    return guard


def install_sensor(app: faust.App, registry: CollectorRegistry, pattern: str = "/metrics") -> RouterSensor:
    """Makes the sensor the app's monitor and serves ``registry`` on ``pattern`` of the app's web server."""
    sensor = RouterSensor(registry)
    app.monitor = sensor

    @app.page(pattern)
    async def metrics(_view: View, request: Request) -> Response:
        # aiohttp's own Response: the exposition's content type carries a charset, which
        # ``View.bytes`` (aiohttp's ``content_type=``) refuses.
        headers = request.headers
        answer = scrape(registry, request.query_string, headers.get("Accept", ""), headers.get("Accept-Encoding", ""))
        return cast(Response, web.Response(status=answer.status, body=answer.body, headers=answer.headers))

    return sensor


class _Families:
    """The Prometheus families (kept apart from the attributes Faust's Monitor uses for its own statistics)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{prefix}_{name}", doc, labels, registry=registry)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"{prefix}_{name}", doc, registry=registry)

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(f"{prefix}_{name}", doc, registry=registry, buckets=_MS_BUCKETS)

        self.received = counter("messages_received", "Messages the router's consumer read")
        self.active_messages = gauge("active_messages", "Messages read and not yet acknowledged")
        self.events = counter("total_events", "Events the router's agents processed")
        self.active_events = gauge("total_active_events", "Events being processed now")
        self.event_runtime = histogram("events_runtime_ms", "Event processing time in ms")
        self.table_operations = counter("table_operations", "Table operations", ("table", "operation"))
        self.sent = counter("total_sent_messages", "Messages the router's producer sent")
        self.send_latency = histogram("producer_send_latency", "Producer send latency in ms")
        self.send_errors = counter("total_error_messages_sent", "Producer sends that failed")
        self.send_error_latency = histogram("producer_error_send_latency", "Latency of failed sends in ms")
        self.assignments = counter("assignment_operations", "Assignments (completed, error)", ("operation",))
        self.assign_latency = histogram("assign_latency", "Assignment latency in ms")
        self.rebalances = gauge("total_rebalances", "Rebalances in progress")
        self.recovering = gauge("total_rebalances_recovering", "Rebalances recovering")
        self.rebalance_return = histogram("rebalance_done_consumer_latency", "Rebalance start to reply in ms")
        self.rebalance_done = histogram("rebalance_done_latency", "Rebalance start to end, recovery included, in ms")
        self.commit_latency = histogram("consumer_commit_latency", "Offset commit latency in ms")
        self.http_status = counter("http_status_codes", "Web answers by status code", ("status_code",))
        self.http_latency = histogram("http_latency", "Web request latency in ms")


class RouterSensor(Monitor):
    """Faust's monitor (its in-memory statistics) plus a bounded set of Prometheus families."""

    def __init__(self, registry: CollectorRegistry, prefix: str = "faust_router", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prom = _Families(registry, prefix)

    # --- consuming --------------------------------------------------------------------------------

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        super().on_message_in(tp, offset, message)
        self.prom.received.inc()
        self.prom.active_messages.inc()

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        super().on_message_out(tp, offset, message)
        self.prom.active_messages.dec()

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        state = super().on_stream_event_in(tp, offset, stream, event)
        self.prom.events.inc()
        self.prom.active_events.inc()
        return state

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any], state: dict[str, Any] | None = None
    ) -> None:
        super().on_stream_event_out(tp, offset, stream, event, state)
        self.prom.active_events.dec()
        if state is not None and self.events_runtime:
            self.prom.event_runtime.observe(self.secs_to_ms(self.events_runtime[-1]))

    def on_commit_completed(self, consumer: ConsumerT, state: Any) -> None:
        super().on_commit_completed(consumer, state)
        self.prom.commit_latency.observe(self.ms_since(cast(float, state)))

    # --- tables -----------------------------------------------------------------------------------

    def on_table_get(self, table: CollectionT, key: Any) -> None:
        super().on_table_get(table, key)
        self.prom.table_operations.labels(f"table.{table.name}", "keys_retrieved").inc()

    def on_table_set(self, table: CollectionT, key: Any, value: Any) -> None:
        super().on_table_set(table, key, value)
        self.prom.table_operations.labels(f"table.{table.name}", "keys_updated").inc()

    def on_table_del(self, table: CollectionT, key: Any) -> None:
        super().on_table_del(table, key)
        self.prom.table_operations.labels(f"table.{table.name}", "keys_deleted").inc()

    # --- producing --------------------------------------------------------------------------------

    def on_send_completed(self, producer: ProducerT, state: Any, metadata: RecordMetadata) -> None:
        super().on_send_completed(producer, state, metadata)
        self.prom.sent.inc()
        self.prom.send_latency.observe(self.ms_since(cast(float, state)))

    def on_send_error(self, producer: ProducerT, exc: BaseException, state: Any) -> None:
        super().on_send_error(producer, exc, state)
        self.prom.send_errors.inc()
        self.prom.send_error_latency.observe(self.ms_since(cast(float, state)))

    # --- group membership -------------------------------------------------------------------------

    def on_assignment_error(self, assignor: PartitionAssignorT, state: dict[str, Any], exc: BaseException) -> None:
        super().on_assignment_error(assignor, state, exc)
        self.prom.assignments.labels("error").inc()
        self.prom.assign_latency.observe(self.ms_since(state["time_start"]))

    def on_assignment_completed(self, assignor: PartitionAssignorT, state: dict[str, Any]) -> None:
        super().on_assignment_completed(assignor, state)
        self.prom.assignments.labels("completed").inc()
        self.prom.assign_latency.observe(self.ms_since(state["time_start"]))

    def on_rebalance_start(self, app: AppT) -> dict[str, Any]:
        state = super().on_rebalance_start(app)
        self.prom.rebalances.inc()
        return state

    def on_rebalance_return(self, app: AppT, state: dict[str, Any]) -> None:
        super().on_rebalance_return(app, state)
        self.prom.rebalances.dec()
        self.prom.recovering.inc()
        self.prom.rebalance_return.observe(self.secs_to_ms(state["latency_return"]))

    def on_rebalance_end(self, app: AppT, state: dict[str, Any]) -> None:
        super().on_rebalance_end(app, state)
        self.prom.recovering.dec()
        self.prom.rebalance_done.observe(self.secs_to_ms(state["latency_end"]))

    # --- web --------------------------------------------------------------------------------------

    def on_web_request_end(
        self,
        app: AppT,
        request: Any,
        response: Any,
        state: dict[str, Any],
        *,
        view: Any = None,
    ) -> None:
        super().on_web_request_end(app, request, response, state, view=view)
        self.prom.http_status.labels(str(int(state["status_code"]))).inc()
        self.prom.http_latency.observe(self.secs_to_ms(state["latency_end"]) if "latency_end" in state else 0.0)
