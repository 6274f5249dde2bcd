"""The reconciler's HTTP endpoints: ``/metrics``, ``/healthz`` (the process is up) and ``/readyz``
(the last reconciliation succeeded; the body tells when, and the last error)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from sharebus_access.reconcile import Health


def health_body(health: Health) -> dict[str, object]:
    plan = health.last_plan
    return {
        "ready": health.healthy,
        "runs": health.runs,
        "last_success": health.last_success,
        "last_error": health.last_error,
        "last_error_at": health.last_error_at,
        "last_drift": None if plan is None else {"missing": len(plan.missing), "extra": len(plan.extra)},
    }


def serve(
    host: str, port: int, health: Callable[[], Health], registry: CollectorRegistry = REGISTRY
) -> ThreadingHTTPServer:
    """Starts serving in a daemon thread; ``shutdown()`` the returned server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                body = health_body(health()) if self.path == "/readyz" else {"status": "ok"}
                status = 200 if self.path == "/healthz" or body["ready"] else 503
                self._send(status, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="access-http", daemon=True).start()
    return server
