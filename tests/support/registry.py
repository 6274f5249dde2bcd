"""Runs the schema registry (``python -m sharebus_registry``) as a subprocess for tests.

Usage, from any test that has the ``kafka_admin`` fixture::

    with start_registry(kafka_admin, namespace, tmp_path) as registry:
        client = registry.client()  # authenticated as kafka_admin, a writer

or ``registry = start_registry(...)`` and ``registry.stop()`` when done. ``start_registry`` returns
once ``GET /`` answers 200, which the registry only does after replaying its whole log, so the
registry is ready. Starting again on the same namespace replays the same log (a restart).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from confluent_kafka.schema_registry import SchemaRegistryClient

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.kafka import KafkaAccess
from sharebus_core.registry_client import auth_of, registry_client, registry_http_auth

_counter = itertools.count(1)


class RegistryProcess:
    """A running registry: ``url`` is its base URL; ``stop()`` ends it with SIGTERM.

    ``auth`` (``user:password``) is the credential of the principal that started it, which the
    registry accepts as a writer (the admin, or a bus service of its namespace).
    """

    def __init__(self, service: Child, url: str, auth: str | None, namespace: str) -> None:
        self.service = service
        self.namespace = namespace
        self.url = url
        self.auth = auth

    def client(self, auth: str | None = None) -> SchemaRegistryClient:
        """A confluent-kafka client, as ``auth`` (default: the starting principal)."""
        return registry_client(self.url, auth or self.auth)

    def http(self, auth: str | None = None, **kwargs: Any) -> httpx.Client:
        """A raw HTTP client, as ``auth`` (default: the starting principal)."""
        return httpx.Client(base_url=self.url, auth=registry_http_auth(auth or self.auth), **kwargs)

    @property
    def log_path(self) -> Path:
        return self.service.log_path

    def log_tail(self, lines: int = 60) -> str:
        return self.service.tail(lines)

    def stop(self) -> int | None:
        """Stops the process (SIGTERM) and returns its exit code; safe to call twice."""
        return self.service.stop()

    def __enter__(self) -> RegistryProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_registry(
    access: KafkaAccess,
    namespace: str,
    log_dir: Path,
    timeout_s: float = 60.0,
    extra_env: Mapping[str, str] | None = None,
) -> RegistryProcess:
    """Starts a registry on a free port for ``namespace`` (topic ``<namespace>._schemas``) and waits until ready.

    Its output goes to ``log_dir/registry-<namespace>-<n>.log``; a failure to start raises
    ``ChildFailed`` with the tail of that log.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **access.env(),
        "SHAREBUS_NAMESPACE": namespace,
        "SHAREBUS_REGISTRY_HOST": "127.0.0.1",
        "SHAREBUS_REGISTRY_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_path = log_dir / f"registry-{namespace}-{next(_counter)}.log"
    service = start_child(f"registry {namespace}", "sharebus_registry", env, log_path, f"{url}/", timeout_s)
    return RegistryProcess(service, url, auth_of(access), namespace)
