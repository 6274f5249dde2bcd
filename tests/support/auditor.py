"""Runs the auditor (``python -m sharebus_audit``) as a subprocess for tests."""

from __future__ import annotations

from pathlib import Path

from sharebus_broker.launcher import free_port
from tests.support.processes import ServiceProcess


def start_auditor(bootstrap: str, namespace: str, work_dir: Path, timeout_s: float = 60.0) -> ServiceProcess:
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    service = ServiceProcess(
        name=f"auditor {namespace}",
        args=["-m", "sharebus_audit"],
        env={
            "SHAREBUS_BOOTSTRAP": bootstrap,
            "SHAREBUS_NAMESPACE": namespace,
            "SHAREBUS_AUDITOR_METRICS_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        },
        log_path=work_dir / f"auditor-{namespace}.log",
    ).start()
    try:
        service.wait_http(f"http://127.0.0.1:{port}/metrics", timeout_s)
    except BaseException:
        service.stop()
        raise
    return service
