"""The small HTTP server a background service answers its probes on: ``/metrics`` from a Prometheus
registry, and JSON health endpoints, each a function that returns its status and body."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from sharebus_core.exposition import scrape

# An endpoint's answer: the HTTP status and the JSON body.
Probe = Callable[[], tuple[int, Mapping[str, object]]]


def serve_probes(
    host: str, port: int, registry: CollectorRegistry, probes: Mapping[str, Probe], thread_name: str
) -> ThreadingHTTPServer:
    """Starts serving in a daemon thread; ``shutdown()`` the returned server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            probe = probes.get(url.path)
            if url.path == "/metrics":
                accept, encoding = self.headers.get("Accept", ""), self.headers.get("Accept-Encoding", "")
                answer = scrape(registry, url.query, accept, encoding)
                self._send(answer.status, answer.body, answer.headers)
            elif probe is not None:
                status, body = probe()
                self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json"})
            else:
                self._send(404, b"not found\n", {"Content-Type": "text/plain"})

        def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the log

    class Server(ThreadingHTTPServer):
        # An IPv6 address ("::", "::1") binds an IPv6 socket; a name or "" binds IPv4, as before.
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, name=thread_name, daemon=True).start()
    return server
