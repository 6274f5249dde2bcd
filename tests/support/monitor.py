"""Runs the lag monitor (``python -m sharebus_monitor``) as a subprocess for tests."""

from __future__ import annotations

from pathlib import Path

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.kafka import KafkaAccess


def start_monitor(
    access: KafkaAccess, namespace: str, catalogue_dir: Path, work_dir: Path, interval_s: float = 1.0
) -> tuple[Child, int]:
    """Starts a monitor for ``namespace``; returns it and its metrics port once /metrics answers."""
    port = free_port()
    env = {
        **access.env(),
        "SHAREBUS_NAMESPACE": namespace,
        "SHAREBUS_CATALOGUE_DIR": str(catalogue_dir),
        "SHAREBUS_MONITOR_METRICS_PORT": str(port),
        "SHAREBUS_MONITOR_INTERVAL_S": str(interval_s),
        "PYTHONUNBUFFERED": "1",
    }
    child = start_child(
        f"monitor {namespace}",
        "sharebus_monitor",
        env,
        work_dir / f"monitor-{namespace}.log",
        f"http://127.0.0.1:{port}/metrics",
        60,
    )
    return child, port
