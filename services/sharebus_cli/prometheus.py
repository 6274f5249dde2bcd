"""Runs a real Prometheus (Debian's package) on the project's deploy/prometheus config, rewritten only for ports.

``sharebus run`` uses it so that a user can query the demo, and the observability integration test uses
it to evaluate every dashboard query. The system's own Prometheus service is never involved: this
instance has its own config copy, port and data directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sharebus_cli.children import Child, ChildFailed
from sharebus_core.exposition import shards_for
from sharebus_core.settings import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
INSTALL_HINT = "scripts/ensure-prometheus.sh installs it (Debian package 'prometheus')"


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def rewrite_config(
    text: str,
    ports: Mapping[str, int | Sequence[int]],
    scrape_interval: str | None = None,
    shards: Mapping[str, int] | None = None,
    hosts: Mapping[str, Sequence[str]] | None = None,
    token_file: Path | str | None = None,
) -> str:
    """The config with each job in ``ports`` scraping that port (or those ports: one target each, e.g. the
    router workers) on the same host, each job in ``hosts`` scraping exactly those ``host:port`` targets
    (docker-compose's service names), and each job in ``shards`` scraped in that many parts. A job in
    neither ``ports`` nor ``hosts`` is left out: its process does not run here, and a target nothing
    answers would fire SharebusProcessDown. With ``token_file``, every job sends the bus's scrape token
    read from that file (``authorization: {type: Bearer, credentials_file: ...}``): every /metrics
    demands it (docs/security.md)."""
    config: dict[str, Any] = yaml.safe_load(text)
    shards, hosts = shards or {}, hosts or {}
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    unknown = (set(ports) | set(shards) | set(hosts)) - jobs
    if unknown:
        raise ValueError(f"no such scrape job in {CONFIG.name}: {sorted(unknown)}")
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] in {*ports, *hosts}]
    for job in config["scrape_configs"]:
        port = ports.get(job["job_name"])
        if port is not None:
            for static in job["static_configs"]:
                each = [port] if isinstance(port, int) else list(port)
                static["targets"] = [f"{target.rsplit(':', 1)[0]}:{p}" for target in static["targets"] for p in each]
        targets = hosts.get(job["job_name"])
        if targets is not None:
            job["static_configs"] = [{"targets": list(targets)}]
        count = shards.get(job["job_name"], 1)
        if count > 1:
            _shard(job, count)
        if token_file is not None:
            job["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
    if scrape_interval is not None:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    return yaml.safe_dump(config, sort_keys=False)


# The jobs whose series grow with the catalogue: per class, per subscription and per topic.
SHARDED_JOBS = ("sharebus-router", "sharebus-monitor")


def catalogue_shards(classes: int) -> dict[str, int]:
    """How many parts each catalogue-sized job is scraped in, for a catalogue of ``classes`` classes."""
    return dict.fromkeys(SHARDED_JOBS, shards_for(classes))


# docker-compose.yml's services, scraped by service name on the compose network.
COMPOSE_HOSTS: Mapping[str, Sequence[str]] = {
    "sharebus-router": ("router-1:6066", "router-2:6066"),
    "sharebus-auditor": ("auditor:6067",),
    "sharebus-monitor": ("monitor:6068",),
    "sharebus-gateway": ("gateway:8080",),
    "sharebus-access": ("access:6069",),
    "sharebus-portal": ("portal:8090",),
}


def compose_config(classes: int, rules_dir: str, token_file: str) -> str:
    """docker-compose.yml's Prometheus config: the project's, scraping the compose services by name, in
    as many parts as ``sharebus run`` scrapes a catalogue of ``classes`` classes, with the rule files
    read from ``rules_dir`` (where compose mounts deploy/prometheus) and the scrape token from
    ``token_file`` (where compose mounts Prometheus's secrets volume)."""
    config: dict[str, Any] = yaml.safe_load(
        rewrite_config(
            CONFIG.read_text(), {}, shards=catalogue_shards(classes), hosts=COMPOSE_HOSTS, token_file=token_file
        )
    )
    config["rule_files"] = [f"{rules_dir.rstrip('/')}/{rule_file}" for rule_file in config.get("rule_files", [])]
    return yaml.safe_dump(config, sort_keys=False)


def _shard(job: dict[str, Any], count: int) -> None:
    """Every target of ``job`` scraped as ``count`` targets, ``/metrics?shard=K&shards=count`` each
    (sharebus_core.exposition). The ``shard`` label keeps the parts' ``up`` series apart."""
    job["params"] = {**job.get("params", {}), "shards": [str(count)]}
    job["static_configs"] = [
        {**static, "labels": {**static.get("labels", {}), "__param_shard": str(index), "shard": str(index)}}
        for static in job["static_configs"]
        for index in range(count)
    ]


class PrometheusServer(Child):
    """``prometheus`` with the rewritten config and the rule files beside it, in ``work_dir``."""

    def __init__(
        self,
        binary: str,
        work_dir: Path,
        port: int,
        ports: Mapping[str, int | Sequence[int]],
        scrape_interval: str | None = None,
        log_path: Path | None = None,
        shards: Mapping[str, int] | None = None,
        token_file: Path | None = None,
    ) -> None:
        super().__init__("prometheus", binary, {}, log_path or work_dir / "prometheus.log")
        self.binary = binary
        self.work_dir = work_dir
        self.port = port
        self.ports = dict(ports)
        self.scrape_interval = scrape_interval
        self.shards = dict(shards or {})
        self.token_file = token_file

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.work_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=7d",
        ]

    def start(self) -> PrometheusServer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = rewrite_config(
            CONFIG.read_text(), self.ports, self.scrape_interval, self.shards, token_file=self.token_file
        )
        (self.work_dir / "prometheus.yml").write_text(config)
        # Rule files are named relative to the config, so they sit beside the copy, unchanged.
        for rule_file in yaml.safe_load(config).get("rule_files", []):
            shutil.copyfile(PROMETHEUS_DIR / rule_file, self.work_dir / rule_file)
        super().start()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> PrometheusServer:
        self.wait_http(f"{self.url}/-/ready", timeout_s)
        return self


def start_prometheus(
    work_dir: Path,
    port: int,
    ports: Mapping[str, int | Sequence[int]],
    scrape_interval: str | None = None,
    shards: Mapping[str, int] | None = None,
    token_file: Path | None = None,
) -> PrometheusServer:
    """Starts Prometheus and returns once it is ready; raises ``ChildFailed`` when it is not installed.
    ``token_file``: the bus's scrape token, which every target demands (without it every target is down)."""
    binary = find_prometheus()
    if binary is None:
        raise ChildFailed(f"prometheus is not installed; {INSTALL_HINT}")
    server = PrometheusServer(binary, work_dir, port, ports, scrape_interval, shards=shards, token_file=token_file)
    server.start()
    try:
        return server.wait_ready()
    except BaseException:
        server.stop()
        raise
