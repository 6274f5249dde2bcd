"""Every dashboard query, run against a real Prometheus scraping a real bus that carries the demo workload.

Router, auditor and monitor run as processes on the session's broker; the demo departments publish and
subscribe in this process; Prometheus (Debian's package, installed by set-up) runs on the project's
deploy/prometheus/prometheus.yml, rewritten only for ports, a 1 s scrape interval and the router and the monitor
scraped in two parts each.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from sharebus_broker.launcher import free_port
from sharebus_cli.prometheus import PrometheusServer, start_prometheus
from sharebus_cli.stats_cmd import from_prometheus
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.scrape_auth import TOKEN_FILE_ENV
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR, BusSettings
from sharebus_core.topics import TopicNames
from sharebus_demo.workload import DemoWorkload
from sharebus_grants import GrantService
from sharebus_monitor.dashboards import GRAFANA_DIR, panel_queries
from sharebus_sdk import PublisherSettings, SubscriberSettings
from tests.support.auditor import start_auditor
from tests.support.identities import provision_bus
from tests.support.kafka import eventually
from tests.support.keys import control_keys
from tests.support.monitor import start_monitor
from tests.support.names import unique
from tests.support.promql import query, substitute
from tests.support.registry import RegistryProcess
from tests.support.router import start_router
from tests.unit.test_prometheus_rules import ALERTS

# BDB provides a conditional real-time class with four subscribers: the demo grants the first, so the
# others are denied, and the test leaves one application unanswered past its deadline.
DEPARTMENT = "BDB"
DATA_CLASS = "101001001/000001"
LATE_APPLICANT = "hs-settle"
SHARDS = {"sharebus-router": 2, "sharebus-monitor": 2}
GRAFANA = {"__rate_interval": "30s", "__range": "10m", "department": DEPARTMENT, "data_class": DATA_CLASS}


def _port(url: str) -> int:
    port = urlparse(url).port
    assert port is not None
    return port


def _apply_late(catalogue: Catalogue, access: KafkaAccess, namespace: str) -> None:
    """An application made 30 days ago that the provider never answered: overdue by any deadline."""
    month_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    service = GrantService(
        catalogue, access, TopicNames(namespace).grants, control=control_keys(), clock=lambda: month_ago
    )
    service.apply(
        department=catalogue.department_of_system[LATE_APPLICANT],
        requester="late officer",
        consumer=LATE_APPLICANT,
        data_class=DATA_CLASS,
        purpose="settlement checks",
        scenario="observability test",
    )


@pytest.fixture(scope="module")
def scraped_bus(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """One bus for this module's tests: starting it takes most of a minute on two cores."""
    namespace = unique("obs")
    tmp_path = tmp_path_factory.mktemp("observability")
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    with ExitStack() as stack:
        services = provision_bus(kafka_admin, catalogue, namespace, shared_registry.namespace)
        router = start_router(services["router"], namespace, shared_registry.url, DEFAULT_CATALOGUE_DIR, tmp_path)
        stack.callback(router.stop)
        auditor = start_auditor(services["auditor"], namespace, tmp_path)
        stack.callback(auditor.stop)
        monitor, monitor_port = start_monitor(services["monitor"], namespace, DEFAULT_CATALOGUE_DIR, tmp_path)
        stack.callback(monitor.stop)
        common = BusSettings(
            **kafka_admin.settings_fields(),
            namespace=namespace,
            registry_url=shared_registry.url,
            catalogue_dir=DEFAULT_CATALOGUE_DIR,
        ).model_dump()
        workload = DemoWorkload(
            catalogue,
            PublisherSettings.model_validate(common),
            SubscriberSettings.model_validate(common),
            60.0,
            control_keys(),
        )
        assert workload.grant_conditional_shares()
        _apply_late(catalogue, kafka_admin, namespace)
        workload.start()
        stack.callback(workload.close)
        jobs = {
            "sharebus-router": _port(router.base_url),
            "sharebus-auditor": int(auditor.env["SHAREBUS_AUDITOR_METRICS_PORT"]),
            "sharebus-monitor": monitor_port,
        }
        # The catalogue-sized jobs in two parts each, as a city's would be in eight (docs/metrics.md).
        # With the session's scrape token, which every target demands (tests/support/scrape.py).
        token_file = Path(os.environ[TOKEN_FILE_ENV])
        prometheus = start_prometheus(
            tmp_path / "prometheus", free_port(), jobs, scrape_interval="1s", shards=SHARDS, token_file=token_file
        )
        stack.callback(prometheus.stop)
        yield prometheus


def _dashboard_queries() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json")):
        for title, expr in panel_queries(json.loads(path.read_text())):
            found.append((path.stem, title, substitute(expr, GRAFANA)))
    return found


@pytest.mark.timeout(480)
def test_every_dashboard_query_parses_and_returns_data(scraped_bus: PrometheusServer) -> None:
    url = scraped_bus.url
    queries = _dashboard_queries()
    assert len(queries) > 30
    assert all("$" not in expr for _, _, expr in queries), "a template variable was left unsubstituted"

    def without_data() -> list[str]:
        return [f"{board} / {title}: {expr}" for board, title, expr in queries if not query(url, expr).has_data]

    missing = eventually(without_data, lambda left: not left, timeout_s=240)
    assert missing == [], "\n".join(missing)

    for board, title, expr in queries:
        answer = query(url, expr)
        assert answer.status == "success", f"{board} / {title}: {answer.error}\n{expr}"


def test_targets_rules_and_label_bounds_on_the_scraped_bus(scraped_bus: PrometheusServer) -> None:
    url = scraped_bus.url
    up = eventually(lambda: query(url, 'up{job=~"sharebus-.*"} == 1').result, lambda r: len(r) == 5, 60)
    assert sorted((r["metric"]["job"], r["metric"].get("shard")) for r in up) == [
        ("sharebus-auditor", None),
        ("sharebus-monitor", "0"),
        ("sharebus-monitor", "1"),
        ("sharebus-router", "0"),
        ("sharebus-router", "1"),
    ]

    # Each class's series are in one part; the parts together hold every class, once.
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    received = 'count by (data_class, shard) (sharebus_records_received_total{job="sharebus-router"})'
    per_class = eventually(lambda: query(url, received).result, lambda r: len(r) == len(catalogue.data_classes), 60)
    assert sorted(r["metric"]["data_class"] for r in per_class) == sorted(catalogue.data_classes)
    assert {r["metric"]["shard"] for r in per_class} == {"0", "1"}
    process_wide = query(url, 'sharebus_router_source_partitions{job="sharebus-router"}').result
    assert [r["metric"]["shard"] for r in process_wide] == ["0"]

    rules = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in rules for rule in group["rules"]}
    declared = yaml.safe_load(ALERTS.read_text())["groups"]
    assert set(loaded) == {rule["alert"] for group in declared for rule in group["rules"]}
    assert set(loaded.values()) == {"ok"}

    # Labels stay bounded: every provider, consumer, class and department is a catalogue code.
    allowed = {
        "provider": set(catalogue.departments),
        "department": set(catalogue.departments),
        "consumer": set(catalogue.systems),
        "data_class": set(catalogue.data_classes),
    }
    series = eventually(
        lambda: query(url, '{__name__=~"sharebus_.+", job=~"sharebus-.*"}').result, lambda r: len(r) > 100, 60
    )
    for sample in series:
        for label, values in allowed.items():
            value = sample["metric"].get(label)
            assert value is None or value in values, sample["metric"]


def test_stats_reads_the_assessment_figures_from_prometheus(scraped_bus: PrometheusServer) -> None:
    def department_row(department: str = DEPARTMENT) -> dict[str, float]:
        return dict(from_prometheus(scraped_bus.url, "10m").get(department, {}))

    # BDB provides a class many subscribe to and its systems receive AMR's and TRANS's classes; HS's
    # systems subscribe to conditional real-time classes whose grant went to another subscriber.
    row = eventually(department_row, lambda r: all(r.get(c, 0) > 0 for c in ("provided", "consumed", "calls")), 60)
    assert all(row.get(c, 0) > 0 for c in ("provided", "consumed", "calls")), row
    denied = eventually(lambda: department_row("HS"), lambda r: r.get("denials", 0) > 0, 60)
    assert denied.get("denials", 0) > 0, denied
