"""The small HTTP server a background service answers its probes on: ``/metrics`` from a Prometheus
registry, and JSON health endpoints, each a function that returns its status and body."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

# An endpoint's answer: the HTTP status and the JSON body.
Probe = Callable[[], tuple[int, Mapping[str, object]]]


def serve_probes(
    host: str, port: int, registry: CollectorRegistry, probes: Mapping[str, Probe], thread_name: str
) -> ThreadingHTTPServer:
    """Starts serving in a daemon thread; ``shutdown()`` the returned server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            probe = probes.get(self.path)
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif probe is not None:
                status, body = probe()
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
            return  # probes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name=thread_name, daemon=True).start()
    return server
