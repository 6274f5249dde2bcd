"""How ``sharebus run`` starts each process of the bus: its environment and Kafka identity, the URL
that must answer before the next one starts, and what it prints for the user (API keys, sign-ins).

Apart from ``run.py``, which decides the order, watches them and stops them.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from sharebus_cli.children import Child, start_child
from sharebus_cli.run_access import RunIdentities
from sharebus_cli.run_settings import RunSettings
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Service
from sharebus_core.settings import REPO_ROOT
from sharebus_core.signing import ControlKeys
from sharebus_core.topics import TopicNames
from sharebus_gateway.keys import KeyStore
from sharebus_portal.accounts import AccountStore
from sharebus_portal.demo import create_demo_accounts


def start(stack: ExitStack, logs: Path, name: str, env: dict[str, str], ready_url: str, timeout_s: float) -> Child:
    module = {"auditor": "sharebus_audit"}.get(name, f"sharebus_{name.split('-')[0]}")
    child = start_child(name, module, env, logs / f"{name}.log", ready_url, timeout_s)
    stack.callback(child.stop)
    return child


def start_routers(stack: ExitStack, logs: Path, env: dict[str, str], ports: list[int]) -> list[Child]:
    """The router workers, one consumer group sharing the source partitions (docs/router-workers.md).

    The first logs to ``router.log``, the others to ``router-2.log``, ...; each has its own web port
    and data directory. They start one after another, so each joins a group that is already routing.
    """
    routers = []
    for i, port in enumerate(ports):
        name = "router" if i == 0 else f"router-{i + 1}"
        worker_env = {**env, "SHAREBUS_ROUTER_WEB_PORT": str(port)}
        if i:
            base = os.environ.get("SHAREBUS_ROUTER_DATA_DIR") or str(REPO_ROOT / "var" / "router")
            worker_env["SHAREBUS_ROUTER_DATA_DIR"] = f"{base}-{i + 1}"
        routers.append(start(stack, logs, name, worker_env, f"http://127.0.0.1:{port}/readyz", 120))
        print(f"sharebus: {name} ready (http://127.0.0.1:{port}/metrics)", flush=True)
    return routers


def start_land(stack: ExitStack, settings: RunSettings, who: RunIdentities, env: dict[str, str], api_key: str) -> Child:
    """The demo's landing sink: one system's deliveries in a SQLite file, with that system's credential
    (and its API key, with which it asks the gateway which of its grants were revoked)."""
    system = settings.land_system or ""
    database = settings.land_dir / f"{system}.db"
    land_env = {
        **env,
        **who.systems[system].env(),
        "SHAREBUS_LAND_SYSTEM": system,
        "SHAREBUS_LAND_DATABASE_URL": f"sqlite:///{database}",
        "SHAREBUS_LAND_METRICS_PORT": str(settings.land_port),
        "SHAREBUS_LAND_GATEWAY_URL": f"http://127.0.0.1:{settings.gateway_port}",
        "SHAREBUS_LAND_API_KEY": api_key,
    }
    ready = f"http://127.0.0.1:{settings.land_port}/metrics"
    child = start(stack, settings.log_dir, "land", land_env, ready, 60)
    print(f"sharebus: landing {system}'s deliveries into {database} (metrics {ready})", flush=True)
    return child


def as_(who: RunIdentities, service: Service, env: dict[str, str]) -> dict[str, str]:
    """``env`` plus the Kafka identity of one bus service."""
    return {**env, **who.services[service].env()}


def start_reconciler(settings: RunSettings, who: RunIdentities, env: dict[str, str]) -> Child:
    """The ACL reconciler: the only process that runs with the admin's credential."""
    ready = f"http://127.0.0.1:{settings.access_port}/readyz"
    access_env = {**env, **who.admin.env(), "SHAREBUS_ACCESS_METRICS_PORT": str(settings.access_port)}
    return start_child("access", "sharebus_access", access_env, settings.log_dir / "access.log", ready, 60)


def start_gateway(
    settings: RunSettings, catalogue: Catalogue, env: dict[str, str], access: KafkaAccess, control: ControlKeys
) -> tuple[Child, dict[str, str]]:
    """Starts the HTTP gateway, prints its URL and a fresh demo API key per system, and returns both."""
    url = f"http://127.0.0.1:{settings.gateway_port}"
    gateway_env = {
        **env,
        "SHAREBUS_GATEWAY_PORT": str(settings.gateway_port),
        "SHAREBUS_DISPUTES_INDEX_DIR": str(settings.disputes_dir),
    }
    gateway = start_child(
        "gateway", "sharebus_gateway", gateway_env, settings.log_dir / "gateway.log", f"{url}/readyz", 60
    )
    keys = KeyStore(catalogue, access, TopicNames(settings.namespace).api_keys, control=control)
    lines = [f"sharebus: gateway on {url} (docs {url}/docs); demo API keys (Authorization: Bearer <key>):"]
    issued = {system: keys.issue(system).token.get_secret_value() for system in catalogue.systems}
    lines += [f"  {system:<16} {token}" for system, token in issued.items()]
    print("\n".join(lines), flush=True)
    return gateway, issued


def start_portal(settings: RunSettings, catalogue: Catalogue, env: dict[str, str]) -> Child:
    """Starts the department portal with fresh demo sign-ins, and prints its URL and those sign-ins."""
    url = f"http://127.0.0.1:{settings.portal_port}"
    store = AccountStore(settings.portal_accounts_file)
    sign_ins = create_demo_accounts(catalogue, store)
    portal_env = {
        **env,
        "SHAREBUS_PORTAL_PORT": str(settings.portal_port),
        "SHAREBUS_PORTAL_ACCOUNTS_FILE": str(settings.portal_accounts_file),
        "SHAREBUS_PORTAL_ROUTER_METRICS_URL": f"http://127.0.0.1:{settings.router_port}/metrics",
        "SHAREBUS_PORTAL_MONITOR_METRICS_URL": f"http://127.0.0.1:{settings.monitor_port}/metrics",
        "SHAREBUS_PORTAL_GATEWAY_URL": f"http://127.0.0.1:{settings.gateway_port}",
    }
    portal = start_child("portal", "sharebus_portal", portal_env, settings.log_dir / "portal.log", f"{url}/readyz", 60)
    lines = [f"sharebus: department portal on {url}; demo sign-ins (new passwords every run):"]
    lines += [
        f"  {s.username:<18} {s.password}   {s.department} {', '.join(r.value for r in s.roles)}" for s in sign_ins
    ]
    lines.append(f"  (more: sharebus portal account add NAME --department D --role R; file {store.path})")
    print("\n".join(lines), flush=True)
    return portal
