"""docker-compose.yml stays valid and describes the replicated set-up: three brokers, two routers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharebus_broker.compose import write_compose_cluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    tool = shutil.which("docker-compose")
    # Installed by scripts/bootstrap.sh (scripts/ensure-docker-compose.sh): missing is a set-up fault.
    assert tool is not None, "docker-compose is missing: run scripts/ensure-docker-compose.sh (make setup)"
    result = subprocess.run(
        [tool, "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_three_brokers_each_with_its_own_data(compose: dict[str, Any]) -> None:
    services = compose["services"]
    brokers = sorted(name for name in services if name.startswith("kafka-") and name != "kafka-init")
    assert brokers == ["kafka-1", "kafka-2", "kafka-3"]
    data = {
        next(v for v in services[b]["volumes"] if "/var/lib/kafka/data" in str(v).replace("'", "")) for b in brokers
    }
    assert len(data) == 3
    for i, broker in enumerate(brokers, start=1):
        assert services[broker]["command"] == [f"/sharebus/kafka/node-{i}/start.sh"]
        assert services[broker]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"


def test_two_router_workers_in_one_group_with_replicated_topics(compose: dict[str, Any]) -> None:
    services = compose["services"]
    routers = sorted(name for name, s in services.items() if s.get("command") == ["python", "-m", "sharebus_router"])
    assert routers == ["router-1", "router-2"]
    envs = [services[r]["environment"] for r in routers]
    # One namespace, so one Faust app id and consumer group: the workers share the partitions.
    assert {e["SHAREBUS_NAMESPACE"] for e in envs} == {"sharebus"}
    assert {e["SHAREBUS_ROUTER_TOPIC_REPLICATION_FACTOR"] for e in envs} == {"3"}
    assert {e["SHAREBUS_BOOTSTRAP"] for e in envs} == {"kafka-1:9092,kafka-2:9092,kafka-3:9092"}


def test_every_bus_service_runs_secured_as_its_own_principal(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("registry", "router-1", "router-2", "auditor", "monitor", "gateway", "access"):
        env = services[name]["environment"]
        assert env["SHAREBUS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert services[name]["depends_on"]["bus-init"]["condition"] == "service_completed_successfully"
        assert "SHAREBUS_SERVICE" in env
        assert "SHAREBUS_KAFKA_PASSWORD" not in env


def test_the_brokers_configs_replicate_and_are_secured(tmp_path: Path) -> None:
    scripts = write_compose_cluster(tmp_path, ["kafka-1", "kafka-2", "kafka-3"])
    assert [s.parent.name for s in scripts] == ["node-1", "node-2", "node-3"]
    for script in scripts:
        props = dict(
            line.split("=", 1) for line in (script.parent / "server.properties").read_text().splitlines() if line
        )
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["controller.quorum.voters"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert props["listener.security.protocol.map"] == "CLIENTS:SASL_SSL,STREAM:SASL_SSL,CONTROLLER:SSL"
        assert "--add-scram" in script.read_text()
        assert script.stat().st_mode & 0o077 == 0
    # Re-running keeps the cluster id and the super user's password.
    before = (scripts[0]).read_text()
    write_compose_cluster(tmp_path, ["kafka-1", "kafka-2", "kafka-3"])
    assert scripts[0].read_text() == before
