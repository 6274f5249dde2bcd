"""The small HTTP server a background service answers its probes on: ``/metrics`` from a Prometheus
registry, and JSON health endpoints, each a function that returns its status and body.

``/metrics`` answers only ``Authorization: Bearer <scrape token>`` (401 and one line otherwise). A probe
answers everyone with its status, but its body only to the token's holders: without the token the body
is reduced to ``{"ready": ...}`` or ``{"status": ...}`` (``public_body``), so that an orchestrator can
probe it and nobody learns the bus's classes or systems from it (docs/security.md)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from sharebus_core.exposition import scrape
from sharebus_core.scrape_auth import UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS, ScrapeToken

# An endpoint's answer: the HTTP status and the JSON body.
Probe = Callable[[], tuple[int, Mapping[str, object]]]


def public_body(status: int, body: Mapping[str, object]) -> dict[str, object]:
    """What a probe tells a caller without the token: whether it is ready (or up), nothing else."""
    if "ready" in body:
        return {"ready": bool(body["ready"])}
    if "healthy" in body:
        return {"healthy": bool(body["healthy"])}
    return {"status": "ok" if status < 400 else "unavailable"}


def serve_probes(
    host: str,
    port: int,
    registry: CollectorRegistry,
    probes: Mapping[str, Probe],
    thread_name: str,
    token: ScrapeToken,
) -> ThreadingHTTPServer:
    """Starts serving in a daemon thread; ``shutdown()`` the returned server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            probe = probes.get(url.path)
            trusted = token.admits(self.headers.get("Authorization"))
            if url.path == "/metrics":
                if not trusted:
                    self._send(401, UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS)
                    return
                accept, encoding = self.headers.get("Accept", ""), self.headers.get("Accept-Encoding", "")
                answer = scrape(registry, url.query, accept, encoding)
                self._send(answer.status, answer.body, answer.headers)
            elif probe is not None:
                status, body = probe()
                shown = body if trusted else public_body(status, body)
                self._send(status, json.dumps(shown).encode(), {"Content-Type": "application/json"})
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
