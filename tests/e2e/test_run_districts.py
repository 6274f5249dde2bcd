"""``sharebus run --demo --districts 1``: a district bus beside the city bus, records crossing both ways."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharebus_broker.launcher import free_port
from sharebus_core.kafka import KafkaAccess, read_credentials_file
from sharebus_core.principals import ADMIN_USER
from sharebus_core.scrape_auth import TOKEN_FILE_ENV
from sharebus_core.topics import TopicNames
from tests.support.kafka import end_offsets, metric
from tests.support.run_cli import assert_stopped_cleanly

# Two clusters, two registries, two routers and MirrorMaker 2, whose start alone takes minutes on a
# loaded two-core machine.
pytestmark = pytest.mark.timeout(1500)

FLOWS = re.compile(r"\| yubei up\s+(?P<up>\d+) down\s+(?P<down>\d+)")
UP_CLASS = "301002001/000001"  # catalogue-districts/yubei: federate: city
DOWN_CLASS = "101001001/000001"  # the city's, granted to Yubei's yb-tax by the demo


def _flows(output: str) -> tuple[int, int] | None:
    matches = list(FLOWS.finditer(output))
    return (int(matches[-1]["up"]), int(matches[-1]["down"])) if matches else None


def _env(tmp_path: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREBUS_")}
    run = {
        "ACCESS_PORT": "access",
        "REGISTRY_PORT": "registry",
        "ROUTER_PORT": "router",
        "AUDITOR_PORT": "auditor",
        "MONITOR_PORT": "monitor",
        "PROMETHEUS_PORT": "prometheus",
        "GATEWAY_PORT": "gateway",
        "PORTAL_PORT": "portal",
        "LAND_PORT": "land",
        "DISTRICT_BROKER_PORT": "district_broker",
        "DISTRICT_REGISTRY_PORT": "district_registry",
        "DISTRICT_ROUTER_PORT": "district_router",
        "FEDERATION_PORT": "federation",
    }
    env |= {f"SHAREBUS_RUN_{key}": str(ports[name]) for key, name in run.items()}
    env |= {
        "SHAREBUS_BROKER_PORT": str(ports["broker"]),
        "SHAREBUS_BROKER_CONTROLLER_PORT": str(ports["controller"]),
        "SHAREBUS_BROKER_STREAM_PORT": str(ports["stream"]),
        "SHAREBUS_BROKER_DATA_DIR": str(tmp_path / "kafka"),
        "SHAREBUS_RUN_CREDENTIALS_DIR": str(tmp_path / "credentials"),
        "SHAREBUS_RUN_KEYS_DIR": str(tmp_path / "keys"),
        "SHAREBUS_RUN_PROMETHEUS_DIR": str(tmp_path / "prometheus"),
        "SHAREBUS_RUN_PORTAL_ACCOUNTS_FILE": str(tmp_path / "portal" / "accounts.json"),
        "SHAREBUS_RUN_LOG_DIR": str(tmp_path / "logs"),
        "SHAREBUS_RUN_LAND_DIR": str(tmp_path / "land"),
        "SHAREBUS_RUN_DISPUTES_DIR": str(tmp_path / "disputes"),
        "SHAREBUS_RUN_DISTRICT_DIR": str(tmp_path / "districts"),
        "SHAREBUS_RUN_STATUS_INTERVAL_S": "0.4",
        # The run makes the bus's scrape token here (not in the repository's var/run); both buses use it.
        TOKEN_FILE_ENV: str(tmp_path / "scrape-token"),
        # Two buses share two cores here: the city's demo runs slower than the plain demo test's.
        "SHAREBUS_RUN_DEMO_RATE": "20",
        "SHAREBUS_ROUTER_DATA_DIR": str(tmp_path / "router"),
        "PYTHONUNBUFFERED": "1",
    }
    return env


def test_run_demo_with_a_district_federates_both_ways_and_stops_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["broker", "controller", "stream", "registry", "router", "auditor", "monitor", "prometheus"]
    names += ["gateway", "portal", "access", "land", "district_broker", "district_registry", "district_router"]
    ports = {name: free_port() for name in [*names, "federation"]}
    out_path = tmp_path / "run.out"
    with open(out_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sharebus_cli.main", "run", "--demo", "--districts", "1"],
            env=_env(tmp_path, ports),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        # Conditions, not a sleep: the status line counts both directions from the start.
        deadline = time.monotonic() + 1200
        flows = None
        while time.monotonic() < deadline and process.poll() is None:
            flows = _flows(out_path.read_text(errors="replace"))
            if flows and flows[0] >= 5 and flows[1] >= 5:
                break
            time.sleep(0.5)
        output = out_path.read_text(errors="replace")
        assert process.poll() is None, f"sharebus run exited early:\n{output[-4000:]}"
        assert flows is not None, f"no federation status:\n{output[-4000:]}"
        monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "scrape-token"))  # the test's scrapes send the run's token
        up, down = flows
        assert up >= 5, f"nothing flowed up:\n{output[-4000:]}"
        assert down >= 5, f"nothing flowed down:\n{output[-4000:]}"

        # Up: the city's router delivered the district's class to the city system granted it. The
        # city's own demo never publishes it (sharebus_demo.workload): these records came through MM2.
        city_router = f"http://127.0.0.1:{ports['router']}/metrics"
        assert metric(city_router, "sharebus_records_total", data_class=UP_CLASS, consumer="tax-levy") >= 5
        # The district's schema id resolved in the city's registry (imported by the federation service).
        unresolved = {"data_class": UP_CLASS, "reason": "unknown_schema_id"}
        assert metric(city_router, "sharebus_dead_letters_total", **unresolved) == 0
        # Down: the city's grant reached the district's cluster, and its system decoded it (the status
        # line's count is the district subscriber's, through the district's own registry).
        admin_file = tmp_path / "districts" / "yubei" / "kafka" / "credentials" / f"{ADMIN_USER}.json"
        district_admin = read_credentials_file(admin_file)
        district = KafkaAccess(
            bootstrap=f"127.0.0.1:{ports['district_broker']}",
            username=district_admin.username,
            password=district_admin.password,
            ca_file=district_admin.ca_file,
        )
        assert end_offsets(district, TopicNames("sharebus").delivery("yb-tax")) >= 5
        # The federation service says so too, and the run said where it is.
        federation = f"http://127.0.0.1:{ports['federation']}/metrics"
        assert federation in output
        assert metric(federation, "sharebus_federation_flow_running", district="yubei", direction="up") == 1
        assert metric(federation, "sharebus_federation_flow_running", district="yubei", direction="down") == 1
        assert metric(federation, "sharebus_federation_schemas_imported_total", district="yubei") >= 2
        assert f"127.0.0.1:{ports['district_broker']}" in output
        assert f"http://127.0.0.1:{ports['district_registry']}" in output
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=180)

    output = out_path.read_text(errors="replace")
    # MirrorMaker 2's JVM too: its command line names its configuration under tmp_path.
    assert_stopped_cleanly(code, output, ports, tmp_path)
