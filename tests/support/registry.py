"""Runs the schema registry (``python -m sharebus_registry``) as a subprocess for tests.

Usage, from any test that has the ``kafka_admin`` fixture::

    with start_registry(kafka_admin, namespace, tmp_path) as registry:
        client = SchemaRegistryClient({"url": registry.url})

or ``registry = start_registry(...)`` and ``registry.stop()`` when done. ``start_registry`` returns
once ``GET /`` answers 200, which the registry only does after replaying its whole log, so the
registry is ready. Starting again on the same namespace replays the same log (a restart).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import TracebackType

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.kafka import KafkaAccess

_counter = itertools.count(1)


class RegistryProcess:
    """A running registry: ``url`` is its base URL; ``stop()`` ends it with SIGTERM."""

    def __init__(self, service: Child, url: str) -> None:
        self.service = service
        self.url = url

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


def start_registry(access: KafkaAccess, namespace: str, log_dir: Path, timeout_s: float = 60.0) -> RegistryProcess:
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
    }
    log_path = log_dir / f"registry-{namespace}-{next(_counter)}.log"
    service = start_child(f"registry {namespace}", "sharebus_registry", env, log_path, f"{url}/", timeout_s)
    return RegistryProcess(service, url)
