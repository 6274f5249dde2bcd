"""Runs the auditor (``python -m sharebus_audit``) as a subprocess for tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sharebus_broker.launcher import free_port
from sharebus_cli.children import Child, start_child
from sharebus_core.kafka import KafkaAccess
from tests.support.keys import auditor_env


def start_auditor(
    access: KafkaAccess,
    namespace: str,
    work_dir: Path,
    timeout_s: float = 60.0,
    extra_env: Mapping[str, str] | None = None,
) -> Child:
    return start_auditor_with_metrics(access, namespace, work_dir, timeout_s, extra_env)[0]


def start_auditor_with_metrics(
    access: KafkaAccess,
    namespace: str,
    work_dir: Path,
    timeout_s: float = 60.0,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[Child, str]:
    """The auditor, and the URL of its metrics."""
    port = free_port()
    env = {
        **access.env(),
        "SHAREBUS_NAMESPACE": namespace,
        "SHAREBUS_AUDITOR_METRICS_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **auditor_env(),
        **(extra_env or {}),
    }
    url = f"http://127.0.0.1:{port}/metrics"
    return start_child(
        f"auditor {namespace}", "sharebus_audit", env, work_dir / f"auditor-{namespace}.log", url, timeout_s
    ), url
