"""Runs the gateway (``python -m sharebus_gateway``) as a subprocess for tests, and issues keys for it."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_gateway.keys import KeyStore
from tests.support.keys import control_keys, writer_env


@dataclass
class GatewayProcess:
    service: Child
    base_url: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def stop(self) -> int | None:
        return self.service.stop()


def start_gateway(
    access: KafkaAccess,
    namespace: str,
    registry_url: str,
    catalogue_dir: Path,
    work_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> GatewayProcess:
    """Starts a gateway for ``namespace`` and returns once ``/readyz`` answers 200."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **access.env(),
        "SHAREBUS_NAMESPACE": namespace,
        "SHAREBUS_REGISTRY_URL": registry_url,
        "SHAREBUS_CATALOGUE_DIR": str(catalogue_dir),
        "SHAREBUS_GATEWAY_PORT": str(port),
        "SHAREBUS_GATEWAY_LOG_LEVEL": "warning",
        # The dispute service's delivery index: in the test's own directory, never the repository's var/.
        "SHAREBUS_DISPUTES_INDEX_DIR": str(work_dir / f"disputes-{namespace}"),
        "PYTHONUNBUFFERED": "1",
        **writer_env(),
        **(extra_env or {}),
    }
    service = start_child(
        f"gateway {namespace}",
        "sharebus_gateway",
        env,
        work_dir / f"gateway-{namespace}.log",
        f"{base_url}/readyz",
        timeout_s,
    )
    return GatewayProcess(service, base_url)


def issue_key(catalogue: Catalogue, access: KafkaAccess, topic: str, system: str) -> str:
    return KeyStore(catalogue, access, topic, control=control_keys()).issue(system).token.get_secret_value()


@dataclass
class SSEEvent:
    event: str = "message"
    id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def parse_sse(lines: list[str]) -> SSEEvent | None:
    """One SSE event from its lines (comments dropped); None for a comment-only block."""
    event = SSEEvent()
    data: list[str] = []
    for line in lines:
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event.event = value
        elif name == "id":
            event.id = value
        elif name == "data":
            data.append(value)
    if not data and event.id is None:
        return None
    event.data = json.loads("\n".join(data)) if data else {}
    return event


def read_sse(
    client: httpx.Client,
    path: str,
    count: int,
    timeout_s: float = 30.0,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> list[SSEEvent]:
    """Reads events (deliveries and errors) until ``count`` arrived, the stream ended, or the time is up."""
    events: list[SSEEvent] = []
    deadline = time.monotonic() + timeout_s
    timeout = httpx.Timeout(10.0, read=5.0)
    with client.stream("GET", path, headers=dict(headers or {}), params=params, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        block: list[str] = []
        lines = response.iter_lines()
        while len(events) < count and time.monotonic() < deadline:
            try:
                line = next(lines)
            except (StopIteration, httpx.ReadTimeout):
                # The stream ended, or went quiet for longer than the gateway's keep-alive interval.
                break
            if line:
                block.append(line)
                continue
            parsed = parse_sse(block)
            block = []
            if parsed is not None:
                events.append(parsed)
                if parsed.event == "error":
                    break
    return events
