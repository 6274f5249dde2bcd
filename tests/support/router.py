"""Runs the router (``python -m sharebus_router``) as a subprocess for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.kafka import KafkaAccess
from sharebus_core.offsets import committed_offsets
from sharebus_core.topics import TopicNames
from tests.support.kafka import end_offsets, eventually
from tests.support.keys import reader_env
from tests.support.scrape import scraped


@dataclass
class RouterProcess:
    service: Child
    base_url: str

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    def stop(self) -> int | None:
        return self.service.stop()


def start_router(
    access: KafkaAccess,
    namespace: str,
    registry_url: str,
    catalogue_dir: Path,
    work_dir: Path,
    timeout_s: float = 90.0,
    extra_env: Mapping[str, str] | None = None,
) -> RouterProcess:
    """Starts a router for ``namespace`` and returns once it has its partitions (``/readyz``)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **access.env(),
        "SHAREBUS_NAMESPACE": namespace,
        "SHAREBUS_REGISTRY_URL": registry_url,
        "SHAREBUS_CATALOGUE_DIR": str(catalogue_dir),
        "SHAREBUS_ROUTER_WEB_PORT": str(port),
        "SHAREBUS_ROUTER_DATA_DIR": str(work_dir / "router-data"),
        "PYTHONUNBUFFERED": "1",
        **reader_env(),
        **(extra_env or {}),
    }
    service = start_child(
        f"router {namespace}",
        "sharebus_router",
        env,
        work_dir / f"router-{namespace}.log",
        f"{base_url}/readyz",
        timeout_s,
    )
    return RouterProcess(service, base_url)


def wait_routed(router: RouterProcess, events: int) -> None:
    """Waits until the router's routes reflect ``events`` grant events (its /readyz says so)."""

    def routed() -> int:
        return int(scraped(f"{router.base_url}/readyz").json()["grant_events_routed"])

    assert eventually(routed, lambda n: n >= events, timeout_s=30) >= events


def router_lag(access: KafkaAccess, namespace: str, class_codes: Iterable[str]) -> int:
    """Records of the source topics that the router has not committed yet (0 when it is caught up)."""
    topics = TopicNames(namespace)
    sources = [topics.source(code) for code in class_codes]
    committed = committed_offsets(access, topics.router_app_id, sources)
    return sum(end_offsets(access, topic) for topic in sources) - sum(committed.values())
