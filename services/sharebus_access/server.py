"""The reconciler's HTTP endpoints: ``/metrics``, ``/healthz`` (the process is up) and ``/readyz``
(the last reconciliation succeeded; the body tells when, and the last error, and how the catalogue
watcher fares: a failing watcher leaves the service ready, the timer still checking the ACLs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http.server import ThreadingHTTPServer

from prometheus_client import REGISTRY, CollectorRegistry

from sharebus_access.reconcile import Health
from sharebus_access.watch import WatchHealth
from sharebus_core.probe_server import Probe, serve_probes
from sharebus_core.scrape_auth import ScrapeToken


def health_body(health: Health, watch: WatchHealth | None = None) -> dict[str, object]:
    plan = health.last_plan
    body: dict[str, object] = {
        "ready": health.healthy,
        "runs": health.runs,
        "last_success": health.last_success,
        "last_error": health.last_error,
        "last_error_at": health.last_error_at,
        "last_drift": None if plan is None else {"missing": len(plan.missing), "extra": len(plan.extra)},
        # Still ready: the ACLs are in step. But these credentials outlived their systems (docs/security.md).
        "removed_system_credentials": list(health.removed_credentials),
    }
    if watch is not None:
        body["catalogue_watch"] = watch.body()
    return body


def serve(
    host: str,
    port: int,
    health: Callable[[], Health],
    token: ScrapeToken,
    registry: CollectorRegistry = REGISTRY,
    watch: Callable[[], WatchHealth] | None = None,
) -> ThreadingHTTPServer:
    """Starts serving in a daemon thread; ``shutdown()`` the returned server to stop. ``/readyz``'s body
    names removed systems: without the scrape token it is only ``{"ready": ...}`` (probe_server)."""

    def alive() -> tuple[int, Mapping[str, object]]:
        return 200, {"status": "ok"}

    def ready() -> tuple[int, Mapping[str, object]]:
        body = health_body(health(), None if watch is None else watch())
        return (200 if body["ready"] else 503), body

    probes: dict[str, Probe] = {"/healthz": alive, "/readyz": ready}
    return serve_probes(host, port, registry, probes, "access-http", token)
