"""``sharebus run --demo`` as a user runs it: everything starts, records cross, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sharebus_broker.launcher import free_port
from sharebus_core.kafka import read_credentials_file
from sharebus_core.principals import ADMIN_USER
from sharebus_core.scrape_auth import TOKEN_FILE_ENV
from tests.support.kafka import metric
from tests.support.run_cli import assert_stopped_cleanly
from tests.support.scrape import scraped

STATUS = re.compile(
    r"published\s+(?P<published>\d+) \| junk\s+(?P<junk>\d+) \| routed\s+(?P<routed>\d+) \| "
    r"delivered\s+(?P<delivered>\d+) \| denied\s+(?P<denied>\d+) \| dead letters\s+(?P<dead>\d+) \| "
    r"subscribers received\s+(?P<received>\d+)"
)


def _last_status(output: str) -> dict[str, int] | None:
    matches = list(STATUS.finditer(output))
    return {k: int(v) for k, v in matches[-1].groupdict().items()} if matches else None


def _scraped_jobs(prometheus_url: str) -> dict[str, float]:
    """Prometheus's ``up`` per sharebus job: the lowest of its targets (1 only when every one answered)."""
    query = "min by (job) (up{job=~'sharebus-.*'})"
    body = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=5).json()
    return {r["metric"]["job"]: float(r["value"][1]) for r in body["data"]["result"]}


def _wait_scraped(prometheus_url: str, jobs: set[str], timeout_s: float = 90.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        up = _scraped_jobs(prometheus_url)
        if all(up.get(job) == 1.0 for job in jobs) or time.monotonic() > deadline:
            return up
        time.sleep(1.0)


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sharebus_cli.main", "status", "--json"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_run_demo_moves_records_and_stops_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ports = {
        name: free_port()
        for name in (
            "broker",
            "controller",
            "stream",
            "registry",
            "router",
            "auditor",
            "monitor",
            "prometheus",
            "gateway",
            "portal",
            "access",
            "land",
        )
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREBUS_")}
    env |= {
        "SHAREBUS_BROKER_PORT": str(ports["broker"]),
        "SHAREBUS_BROKER_CONTROLLER_PORT": str(ports["controller"]),
        "SHAREBUS_BROKER_STREAM_PORT": str(ports["stream"]),
        "SHAREBUS_RUN_ACCESS_PORT": str(ports["access"]),
        "SHAREBUS_RUN_CREDENTIALS_DIR": str(tmp_path / "credentials"),
        "SHAREBUS_RUN_KEYS_DIR": str(tmp_path / "keys"),
        "SHAREBUS_BROKER_DATA_DIR": str(tmp_path / "kafka"),
        "SHAREBUS_RUN_REGISTRY_PORT": str(ports["registry"]),
        "SHAREBUS_RUN_ROUTER_PORT": str(ports["router"]),
        "SHAREBUS_RUN_AUDITOR_PORT": str(ports["auditor"]),
        "SHAREBUS_RUN_MONITOR_PORT": str(ports["monitor"]),
        "SHAREBUS_RUN_PROMETHEUS_PORT": str(ports["prometheus"]),
        "SHAREBUS_RUN_PROMETHEUS_DIR": str(tmp_path / "prometheus"),
        "SHAREBUS_RUN_GATEWAY_PORT": str(ports["gateway"]),
        "SHAREBUS_RUN_PORTAL_PORT": str(ports["portal"]),
        "SHAREBUS_RUN_PORTAL_ACCOUNTS_FILE": str(tmp_path / "portal" / "accounts.json"),
        "SHAREBUS_RUN_LOG_DIR": str(tmp_path / "logs"),
        "SHAREBUS_RUN_LAND_PORT": str(ports["land"]),
        "SHAREBUS_RUN_LAND_DIR": str(tmp_path / "land"),
        "SHAREBUS_RUN_STATE_FILE": str(tmp_path / "run" / "state.json"),
        "SHAREBUS_RUN_STATUS_INTERVAL_S": "0.4",
        "SHAREBUS_RUN_DEMO_RATE": "60",
        "SHAREBUS_ROUTER_DATA_DIR": str(tmp_path / "router"),
        "PYTHONUNBUFFERED": "1",
    }
    out_path = tmp_path / "run.out"
    with open(out_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sharebus_cli.main", "run", "--demo"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 300  # the demo router drains a start-up backlog first on a loaded machine
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            status = _last_status(out_path.read_text(errors="replace"))
            if status and status["received"] >= 150 and status["dead"] >= 1:
                break
            time.sleep(0.5)
        output = out_path.read_text(errors="replace")
        assert process.poll() is None, f"sharebus run exited early:\n{output[-3000:]}"
        assert status is not None, f"no status line:\n{output[-3000:]}"
        assert status["received"] >= 150, output[-3000:]
        assert status["dead"] >= 1, output[-3000:]
        assert status["published"] > 0
        assert status["routed"] > 0
        assert status["denied"] > 0

        # It says where everything is.
        assert f"127.0.0.1:{ports['broker']}" in output
        assert f"http://127.0.0.1:{ports['registry']}" in output
        metrics_url = f"http://127.0.0.1:{ports['router']}/metrics"
        assert metrics_url in output
        # The run made the bus's scrape token once in its state directory (0600) and printed where it is;
        # every /metrics refuses a scrape without it, and the test's own scrapes send it from here on.
        token_file = tmp_path / "run" / "scrape-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert f"SHAREBUS_SCRAPE_TOKEN_FILE={token_file}" in output
        monkeypatch.setenv(TOKEN_FILE_ENV, str(token_file))
        assert httpx.get(metrics_url, timeout=5).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{ports['land']}/metrics", timeout=5).status_code == 401
        assert "sharebus.src.<class> x32" in output
        # The monitor and Prometheus (installed by set-up) run too, and say where.
        assert f"http://127.0.0.1:{ports['monitor']}/metrics" in output
        assert f"http://127.0.0.1:{ports['prometheus']}" in output
        assert httpx.get(f"http://127.0.0.1:{ports['prometheus']}/-/ready", timeout=5).status_code == 200
        # It scrapes every process that serves metrics, the doors included (and no port nothing answers).
        jobs = {"router", "auditor", "monitor", "gateway", "access", "portal", "land"}
        up = _wait_scraped(f"http://127.0.0.1:{ports['prometheus']}", {f"sharebus-{job}" for job in jobs})
        assert up == {f"sharebus-{job}": 1.0 for job in jobs}, up
        # The demo's landing sink keeps drc-credit's deliveries in its own SQLite file.
        assert f"landing drc-credit's deliveries into {tmp_path / 'land' / 'drc-credit.db'}" in output
        land_metrics = scraped(f"http://127.0.0.1:{ports['land']}/metrics").text
        assert "sharebus_land_transactions_total" in land_metrics
        # The registry answers only a credential (the admin's here), and refuses anonymous callers.
        registry_url = f"http://127.0.0.1:{ports['registry']}"
        admin = read_credentials_file(tmp_path / "kafka" / "credentials" / f"{ADMIN_USER}.json")
        assert httpx.get(f"{registry_url}/subjects", timeout=5).status_code == 401
        admin_auth = (admin.username, admin.password.get_secret_value())
        assert httpx.get(f"{registry_url}/subjects", auth=admin_auth, timeout=5).json()
        # The gateway is up, and the demo key printed for a system works.
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        assert f"gateway on {gateway_url}" in output
        demo_key = re.search(r"^  tax-levy +(sbk_\S+)$", output, re.MULTILINE)
        assert demo_key is not None, output[-3000:]
        auth = {"Authorization": f"Bearer {demo_key.group(1)}"}
        assert httpx.get(f"{gateway_url}/v1/catalogue/departments", headers=auth, timeout=5).status_code == 200
        assert metric(metrics_url, "sharebus_records_total", data_class="301001001/000001") > 0
        # The portal is up, and a demo sign-in printed for the bureau works (the session cookie is set).
        portal_url = f"http://127.0.0.1:{ports['portal']}"
        assert f"department portal on {portal_url}" in output
        bureau = re.search(r"^  bureau +(\S+) +BDB operator$", output, re.MULTILINE)
        assert bureau is not None, output[-3000:]
        signed_in = httpx.post(
            f"{portal_url}/login", data={"username": "bureau", "password": bureau.group(1)}, timeout=10
        )
        assert signed_in.status_code == 303
        assert "sharebus_portal_session=" in signed_in.headers["set-cookie"]
        assert (tmp_path / "portal" / "accounts.json").stat().st_mode & 0o777 == 0o600
        assert bureau.group(1) not in (tmp_path / "portal" / "accounts.json").read_text()
        # The demo approved grants on conditional classes, so records flow under them.
        assert "demo grant approved" in output
        granted = metric(metrics_url, "sharebus_records_total") - metric(
            metrics_url, "sharebus_records_total", data_class="301001001/000001"
        )
        assert granted > 0
        # It says where the credentials are, never a password; they are the owner's only.
        credentials = tmp_path / "credentials"
        assert str(credentials) in output
        assert (credentials / "operator.json").stat().st_mode & 0o777 == 0o600
        assert (credentials / "tax-levy.json").stat().st_mode & 0o777 == 0o600
        assert json.loads((credentials / "operator.json").read_text())["password"] not in output
        # The ACL reconciler runs and the cluster's ACLs are what the catalogue implies.
        access_metrics = f"http://127.0.0.1:{ports['access']}/metrics"
        assert metric(access_metrics, "sharebus_acl_drift", kind="missing") == 0
        # The audit trail of the running demo verifies, with the CLI set up as the run said.
        exports = re.search(r"for the operator's CLI: export (.+)$", output, re.MULTILINE)
        assert exports is not None, output[-3000:]
        cli_env = {**env, **dict(pair.split("=", 1) for pair in exports.group(1).split())}
        verified = subprocess.run(
            [sys.executable, "-m", "sharebus_cli.main", "audit", "verify"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "audit chain intact" in verified.stdout
        # `sharebus status` says what runs, that each part answers, and where each door listens.
        asked = _status(env)
        assert asked.returncode == 0, asked.stdout + asked.stderr
        answer = json.loads(asked.stdout)
        assert (answer["running"], answer["healthy"], answer["pid"]) == (True, True, process.pid)
        assert answer["broker"]["reachable"] == {f"127.0.0.1:{ports['broker']}": True}
        parts = {p["name"]: p for p in answer["processes"]}
        expected = {"registry", "router", "auditor", "access", "gateway", "portal", "monitor", "prometheus", "land"}
        assert set(parts) == expected, parts
        assert all(p["answers"] and p["running"] for p in parts.values()), parts
        assert {name: parts[name]["door"] for name in ("gateway", "portal")} == {
            "gateway": gateway_url,
            "portal": portal_url,
        }
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=90)

    output = out_path.read_text(errors="replace")
    assert_stopped_cleanly(code, output, ports, tmp_path)
    stopped = _status(env)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert json.loads(stopped.stdout)["running"] is False
