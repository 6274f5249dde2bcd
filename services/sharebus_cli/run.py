"""``sharebus run``: the whole bus on this machine (broker, registry, router) plus demo departments.

Here: the order processes start in, the summary, the watch loop and the stop. How each process is
started (environment, ready URL, what it prints) is ``run_services.py``; the settings ``run_settings.py``.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sharebus_broker import BrokerSettings, KafkaBroker
from sharebus_broker.launcher import port_in_use
from sharebus_cli.children import Child, ChildFailed
from sharebus_cli.observe import start_observability
from sharebus_cli.prometheus import find_prometheus
from sharebus_cli.run_access import RunIdentities, print_cli_access, provision_identities
from sharebus_cli.run_districts import DistrictRun, district_run
from sharebus_cli.run_services import (
    as_,
    start,
    start_gateway,
    start_land,
    start_portal,
    start_reconciler,
    start_routers,
)
from sharebus_cli.run_settings import RunSettings, scrape_token_path
from sharebus_cli.run_state import remove_state, state_of, write_state
from sharebus_cli.status import scrape_totals, status_line
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.errors import SharebusError
from sharebus_core.key_files import BusKeys, bus_keys
from sharebus_core.scrape_auth import TOKEN_FILE_ENV, ensure_scrape_token, load_scrape_token
from sharebus_core.settings import BusSettings
from sharebus_core.signing import ControlKeys
from sharebus_core.topics import TopicNames
from sharebus_demo.workload import DemoWorkload
from sharebus_sdk import PublisherSettings, SubscriberSettings


class Stop(SharebusError):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def _describe(
    log_dir: Path,
    catalogue: Catalogue,
    topics: TopicNames,
    broker: KafkaBroker,
    registry_url: str,
    metrics_url: str,
    demo: DemoWorkload | None,
    observability: list[str],
) -> str:
    lines = [
        "",
        "sharebus is running",
        f"  broker     {broker.bootstrap}   (Kafka {broker.settings.kafka_version}, KRaft; log {broker.log_path})",
        f"  registry   {registry_url}   (schemas in topic {topics.schemas})",
        f"  router     {metrics_url}   (also /healthz, /readyz)",
        f"  auditor    chains {topics.audit_facts} into {topics.audit} (sharebus audit verify)",
        f"  topics     {topics.source('<class>')} x{len(catalogue.data_classes)}, "
        f"{topics.delivery('<system>')} x{len(catalogue.systems)}, {topics.dead_letter}, {topics.grants}, "
        f"{topics.audit}",
        *observability,
        f"  logs       {log_dir}",
    ]
    if demo is not None:
        lines.append(
            f"  demo       {len(catalogue.departments)} departments publish ~{demo.rate:.0f} records/s; "
            f"{len(demo.receivers)} systems receive ({', '.join(demo.receivers[:6])}, ...)"
        )
    lines += ["Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT (Ctrl-C) stop the bus, in order.

    A shell starts a background job (``make run > run.log &``) with SIGINT ignored, and Python then
    leaves it ignored: ``kill -INT`` did nothing. The bus puts Python's own handler back.
    """
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _doors(settings: RunSettings, landing: bool) -> list[str]:
    """The summary's lines for the processes a user talks to, beside those of the data path."""
    lines = [
        f"  gateway    http://127.0.0.1:{settings.gateway_port}   (docs /docs; the demo API keys are above)",
        f"  portal     http://127.0.0.1:{settings.portal_port}   (the demo sign-ins are above)",
        f"  access     http://127.0.0.1:{settings.access_port}/metrics   (the ACL reconciler)",
        f"  scrapes    every /metrics answers only Authorization: Bearer $(cat {scrape_token_path(settings)})",
    ]
    if landing:
        lines.append(
            f"  land       http://127.0.0.1:{settings.land_port}/metrics   "
            f"({settings.land_system}'s deliveries in {settings.land_dir / f'{settings.land_system}.db'})"
        )
    return lines


PLAINTEXT_WARNING = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! sharebus: SHAREBUS_BROKER_SECURITY=plaintext. The broker takes ANY client without a credential,
!! over unencrypted connections, and no ACL is checked: every department can read every topic and
!! forge grants. This is for debugging only. Unset SHAREBUS_BROKER_SECURITY to run securely.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""


@dataclass(frozen=True)
class _Bus:
    """What every start step needs once the broker is up: who runs as what, the keys, the shared env."""

    settings: RunSettings
    catalogue: Catalogue
    broker: KafkaBroker
    who: RunIdentities
    keys: BusKeys
    control: ControlKeys
    env: dict[str, str]
    # The bus's scrape token (0600): every service's /metrics demands it, Prometheus and the status line send it.
    scrape_token_file: Path

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.registry_port}"

    @property
    def router_ports(self) -> list[int]:
        return router_ports(self.settings)


def router_ports(settings: RunSettings) -> list[int]:
    return [settings.router_port] + [settings.router_more_port + i for i in range(settings.routers - 1)]


def run_ports(settings: RunSettings, demo: bool, district: DistrictRun | None) -> list[tuple[str, int]]:
    """Every port the run will listen on, named, in the order the processes start."""
    ports = [("registry", settings.registry_port), *(("router", port) for port in router_ports(settings))]
    ports.append(("auditor", settings.auditor_port))
    ports.append(("monitor", settings.monitor_port))
    if find_prometheus() is not None:
        ports.append(("prometheus", settings.prometheus_port))
    ports.append(("gateway", settings.gateway_port))
    ports.append(("portal", settings.portal_port))
    ports.append(("ACL reconciler", settings.access_port))
    if demo and settings.land_system:
        ports.append(("landing sink", settings.land_port))
    return ports + (district.ports() if district is not None else [])


def run_bus(demo: bool, districts: int | None = None) -> int:
    settings = RunSettings()
    district = district_run(districts, settings.catalogue_dir, settings.namespace, settings.log_dir)
    if district is not None:  # the city's catalogue names the district (run_districts.py)
        settings = settings.model_copy(update={"catalogue_dir": district.city_catalogue_dir})
    catalogue = load_catalogue(settings.catalogue_dir)
    for name, port in run_ports(settings, demo, district):
        if port_in_use("127.0.0.1", port):
            print(f"sharebus: port {port} for the {name} is in use; is sharebus already running?", file=sys.stderr)
            return 1
    _stop_on_signals()
    with ExitStack() as stack:
        try:
            _run(stack, settings, catalogue, demo, district)
        except (KeyboardInterrupt, Stop):
            print(
                "\nsharebus: stopping (prometheus, monitor, landing sink, demo, portal, gateway, ACL reconciler, "
                "auditor, router, registry, broker)...",
                flush=True,
            )
        except ChildFailed as exc:
            print(f"\nsharebus: {exc}", file=sys.stderr)
            return 1
    print("sharebus: stopped; no processes left behind.")
    return 0


def _run(
    stack: ExitStack, settings: RunSettings, catalogue: Catalogue, demo: bool, district: DistrictRun | None
) -> None:
    """Starts everything in order (each stop is pushed on ``stack``, so they stop in reverse), then watches."""
    bus = _open_bus(stack, settings, catalogue, demo)
    services, api_keys = _start_services(stack, bus)
    workload, landing = _start_demo(stack, bus, api_keys) if demo else (None, None)
    watched, observability = _start_observers(stack, bus, landing, district)
    metrics_url = f"http://127.0.0.1:{settings.router_port}/metrics"
    topics = TopicNames(settings.namespace)
    summary = _describe(
        settings.log_dir, catalogue, topics, bus.broker, bus.registry_url, metrics_url, workload, observability
    )
    print(summary, flush=True)
    children = [*services, *watched]
    _record_state(stack, settings, bus.broker, children)
    _watch(
        children,
        bus.broker,
        [f"http://127.0.0.1:{port}/metrics" for port in bus.router_ports],
        load_scrape_token(None, bus.scrape_token_file).headers,
        workload,
        settings.status_interval_s,
        district.status if district is not None else str,
    )


def _open_bus(stack: ExitStack, settings: RunSettings, catalogue: Catalogue, demo: bool) -> _Bus:
    """The broker, every process's Kafka identity and the keys; prints how the CLI reaches the bus."""
    broker = KafkaBroker(BrokerSettings()).start()
    stack.callback(broker.stop)
    if not broker.secured:
        print(PLAINTEXT_WARNING, file=sys.stderr, flush=True)
    who = provision_identities(broker.admin_access, catalogue, settings.namespace, settings.credentials_dir, demo)
    keys = bus_keys(settings.keys_dir)
    token_file = ensure_scrape_token(scrape_token_path(settings))
    print_cli_access(
        settings.credentials_dir, who, broker, {**keys.everyone, **keys.control_writer, TOKEN_FILE_ENV: str(token_file)}
    )
    env = {
        **keys.everyone,
        TOKEN_FILE_ENV: str(token_file),
        "SHAREBUS_NAMESPACE": settings.namespace,
        "SHAREBUS_REGISTRY_URL": f"http://127.0.0.1:{settings.registry_port}",
        "SHAREBUS_CATALOGUE_DIR": str(settings.catalogue_dir),
        "SHAREBUS_REGISTRY_PORT": str(settings.registry_port),
        "SHAREBUS_ROUTER_WEB_PORT": str(settings.router_port),
        # SHAREBUS_BROKERS sets the cluster's size; Faust's own topics follow its replication.
        "SHAREBUS_ROUTER_TOPIC_REPLICATION_FACTOR": str(broker.replication.factor),
        # The local bus serves its open classes on the gateway's /open/v1 (docs/open-data.md).
        "SHAREBUS_ROUTER_PUBLIC_DELIVERY": "true",
        "SHAREBUS_AUDITOR_METRICS_PORT": str(settings.auditor_port),
    }
    control = keys.control_keys(settings.control_max_delay_s)
    return _Bus(settings, catalogue, broker, who, keys, control, env, token_file)


def _start_services(stack: ExitStack, bus: _Bus) -> tuple[list[Child], dict[str, str]]:
    """The data path, then the doors: registry, routers, auditor, ACL reconciler, gateway, portal.
    Returns them and the gateway's demo API keys."""
    settings, who, env, logs = bus.settings, bus.who, bus.env, bus.settings.log_dir
    registry = start(stack, logs, "registry", as_(who, "registry", env), f"{bus.registry_url}/", 60)
    print(f"sharebus: registry ready on {bus.registry_url}", flush=True)
    routers = start_routers(stack, logs, as_(who, "router", env), bus.router_ports)
    auditor_ready = f"http://127.0.0.1:{settings.auditor_port}/metrics"
    auditor = start(stack, logs, "auditor", {**as_(who, "auditor", env), **bus.keys.auditor}, auditor_ready, 60)
    reconciler = start_reconciler(settings, who, env)
    stack.callback(reconciler.stop)
    gateway_env = {**as_(who, "gateway", env), **bus.keys.control_writer}
    gateway, api_keys = start_gateway(settings, bus.catalogue, gateway_env, who.services["operator"], bus.control)
    stack.callback(gateway.stop)
    portal = start_portal(settings, bus.catalogue, {**as_(who, "portal", env), **bus.keys.control_writer})
    stack.callback(portal.stop)
    return [registry, *routers, auditor, reconciler, gateway, portal], api_keys


def _start_demo(stack: ExitStack, bus: _Bus, api_keys: dict[str, str]) -> tuple[DemoWorkload, Child | None]:
    """The demo departments' publishers and subscribers, and the landing sink if its system is one of them."""
    settings = bus.settings
    _log_demo_clients_to(settings.log_dir / "demo.log")
    # The demo's bureau pre-approves its grants with the operator's access and the control
    # plane's key; each department's clients then run with their own system's credential.
    common = BusSettings(
        **bus.who.services["operator"].settings_fields(),
        namespace=settings.namespace,
        registry_url=bus.registry_url,
        catalogue_dir=settings.catalogue_dir,
    ).model_dump()
    workload = DemoWorkload(
        bus.catalogue,
        PublisherSettings.model_validate(common),
        SubscriberSettings.model_validate(common),
        settings.demo_rate,
        bus.control,
        bus.who.systems,
    )
    for share in workload.grant_conditional_shares():
        print(f"sharebus: demo grant approved: {share}", flush=True)
    workload.start()
    stack.callback(workload.close)
    if settings.land_system in bus.who.systems:
        return workload, start_land(stack, settings, bus.who, bus.env, api_keys[settings.land_system])
    if settings.land_system:
        print(f"sharebus: no demo system {settings.land_system!r} to land; no sink started", flush=True)
    return workload, None


def _start_observers(
    stack: ExitStack, bus: _Bus, landing: Child | None, district: DistrictRun | None
) -> tuple[list[Child], list[str]]:
    """The monitor and Prometheus, then the districts' buses; returns them (and the landing sink) to
    watch, and their lines of the summary."""
    settings = bus.settings
    # Prometheus starts once every process it scrapes is up, so that none looks down meanwhile.
    job_ports: dict[str, int | list[int]] = {
        "sharebus-router": bus.router_ports,
        "sharebus-auditor": settings.auditor_port,
        "sharebus-monitor": settings.monitor_port,
        "sharebus-gateway": settings.gateway_port,
        "sharebus-access": settings.access_port,
        "sharebus-portal": settings.portal_port,
    }
    if landing is not None:
        job_ports["sharebus-land"] = settings.land_port
    watched, observability = start_observability(
        stack,
        as_(bus.who, "monitor", bus.env),
        settings.log_dir,
        job_ports,
        settings.prometheus_port,
        settings.prometheus_dir,
        len(bus.catalogue.data_classes),
        bus.scrape_token_file,
    )
    if landing is not None:
        watched.append(landing)
    observability += _doors(settings, landing=landing is not None)
    if district is not None:
        watched += district.start(stack, bus.broker.admin_access, bus.who, bus.control, bus.env)
        observability += district.describe()
    return watched, observability


def _log_demo_clients_to(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    for name in ("sharebus.demo.clients", "sharebus_demo"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _record_state(stack: ExitStack, settings: RunSettings, broker: KafkaBroker, children: list[Child]) -> None:
    """What runs and where, for ``sharebus status``, until the bus stops (removed first on the way down)."""
    state = state_of(settings.namespace, broker.bootstrap, broker.log_path, children)
    write_state(settings.state_file, state)
    stack.callback(remove_state, settings.state_file, state.pid)


def _watch(
    children: list[Child],
    broker: KafkaBroker,
    metrics_urls: list[str],
    scrape_headers: dict[str, str],
    workload: DemoWorkload | None,
    interval_s: float,
    suffix: Callable[[], str],
) -> None:
    tty = sys.stdout.isatty()
    ticks = 0
    while True:
        for child in children:
            if not child.alive():
                raise ChildFailed(
                    f"the {child.name} stopped unexpectedly. Last lines of {child.log_path}:\n{child.tail()}"
                )
        if not broker.is_running():
            raise ChildFailed(f"the Kafka broker stopped unexpectedly; see {broker.log_path}")
        counts = workload.counts if workload is not None else None
        line = (
            status_line(
                scrape_totals(*metrics_urls, headers=scrape_headers),
                counts.published if counts else 0,
                counts.junk if counts else 0,
                sum(counts.received.values()) if counts else 0,
            )
            + suffix()
        )
        if tty:
            print(f"\r{time.strftime('%H:%M:%S')} {line}", end="", flush=True)
        elif ticks % 5 == 0:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
        ticks += 1
        time.sleep(interval_s)
