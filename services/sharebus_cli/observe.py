"""The observability part of ``sharebus run``: the lag monitor, and Prometheus when it is installed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from sharebus_cli.children import Child, start_child
from sharebus_cli.prometheus import INSTALL_HINT, catalogue_shards, find_prometheus, start_prometheus
from sharebus_core.scrape_auth import TOKEN_FILE_ENV


def start_observability(
    stack: ExitStack,
    env: Mapping[str, str],
    log_dir: Path,
    job_ports: Mapping[str, int | Sequence[int]],
    prometheus_port: int,
    prometheus_dir: Path,
    classes: int,
    scrape_token_file: Path,
) -> tuple[list[Child], list[str]]:
    """Starts the monitor (port ``job_ports['sharebus-monitor']``) and, if installed, Prometheus scraping
    every job at its port, in as many parts as a catalogue of ``classes`` classes needs, with the bus's
    scrape token (``scrape_token_file``). Returns the children to watch and the lines that say where they are."""
    monitor_port = job_ports["sharebus-monitor"]
    monitor_url = f"http://127.0.0.1:{monitor_port}/metrics"
    monitor = start_child(
        "monitor", "sharebus_monitor",
        {**env, "SHAREBUS_MONITOR_METRICS_PORT": str(monitor_port), TOKEN_FILE_ENV: str(scrape_token_file)},
        log_dir / "monitor.log", monitor_url, 60,
    )  # fmt: skip
    stack.callback(monitor.stop)
    lines = [f"  monitor    {monitor_url}   (consumer lag of the router and every subscriber)"]
    if find_prometheus() is None:
        lines.append(f"  prometheus not installed, so not started; {INSTALL_HINT}")
        return [monitor], lines
    prometheus = start_prometheus(
        prometheus_dir, prometheus_port, job_ports, shards=catalogue_shards(classes), token_file=scrape_token_file
    )
    stack.callback(prometheus.stop)
    lines.append(
        f"  prometheus {prometheus.url}   (alerts: {prometheus.url}/alerts; data in {prometheus_dir}; "
        "dashboards: deploy/grafana)"
    )
    return [monitor, prometheus], lines
