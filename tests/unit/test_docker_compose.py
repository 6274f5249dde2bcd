"""docker-compose.yml stays valid and describes the replicated set-up: three brokers, two routers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharebus_broker.compose import write_compose_cluster
from sharebus_cli.compose_init import PROMETHEUS_UID, SERVICE_UIDS
from sharebus_core.principals import ADMIN_USER

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
        assert services[broker]["command"] == [f"/sharebus/brokers/kafka-{i}/start.sh"]
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


HOSTS = ["kafka-1", "kafka-2", "kafka-3"]
INIT_SERVICES = {"kafka-init", "bus-init"}


def _volumes(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """A service's named volumes: name -> (where mounted, read-only)."""
    found = {}
    for entry in service.get("volumes", []):
        parts = str(entry).split(":")
        if not parts[0].startswith((".", "/")):
            found[parts[0]] = (parts[1], len(parts) > 2 and "ro" in parts[2].split(","))
    return found


def test_only_kafka_init_holds_the_ca_key_and_only_the_init_services_run_as_root(compose: dict[str, Any]) -> None:
    services = compose["services"]
    holders = {name for name, s in services.items() if "kafka-ca" in _volumes(s)}
    assert holders == {"kafka-init"}
    assert {name for name, s in services.items() if "bus-admin" in _volumes(s)} == {"kafka-init", "bus-init"}
    assert {name for name, s in services.items() if "bus-keys" in _volumes(s)} == {"bus-init"}
    for name, service in services.items():
        uid = str(service.get("user", "")).split(":")[0]
        if name in INIT_SERVICES:
            assert uid == "0", name
        else:
            assert uid not in ("", "0", "root"), f"{name} must run as a non-root uid"
    assert "USER 65534:65534" in (REPO / "Dockerfile").read_text()


def test_each_service_mounts_only_its_own_secrets_read_only_as_its_own_uid(compose: dict[str, Any]) -> None:
    services = compose["services"]
    runtime = {name: s for name, s in services.items() if name not in INIT_SERVICES}
    secret_volumes = {
        v for v in compose["volumes"] if v.endswith(("-secrets", "-conf")) or v in ("kafka-ca", "bus-admin", "bus-keys")
    }
    for name, service in runtime.items():
        mounted = {v: m for v, m in _volumes(service).items() if v in secret_volumes}
        if name == "prometheus-config":
            assert mounted == {}
            continue
        if name == "prometheus":
            # Its own volume, with the scrape token only (bus-init writes it, owned by its uid).
            assert mounted == {"prometheus-secrets": ("/etc/sharebus-secrets", True)}
            assert service["user"] == f"{PROMETHEUS_UID}:{PROMETHEUS_UID}"
            assert "--token-file" in services["prometheus-config"]["command"]
            token_file = services["prometheus-config"]["command"][
                services["prometheus-config"]["command"].index("--token-file") + 1
            ]
            assert token_file.startswith("/etc/sharebus-secrets/")
            continue
        if name.startswith("kafka-"):
            assert mounted == {f"{name}-conf": (f"/sharebus/brokers/{name}", True)}
            assert service["user"] == "1000:1000"
            continue
        own = service["environment"]["SHAREBUS_SERVICE"]
        # The entrypoint sources /sharebus/<SHAREBUS_SERVICE>/env: the service's own volume, nothing else.
        assert mounted == {f"{own}-secrets": (f"/sharebus/{own}", True)}, name
        assert service["user"] == f"{SERVICE_UIDS[own]}:{SERVICE_UIDS[own]}", name
    # bus-init fills every service's volume; each volume has one owner (both routers are one principal).
    filled = {v for v in _volumes(services["bus-init"]) if v.endswith("-secrets")}
    assert filled == {f"{s}-secrets" for s in SERVICE_UIDS} | {"prometheus-secrets"}
    assert len(set(SERVICE_UIDS.values())) == len(SERVICE_UIDS)


def test_the_brokers_configs_replicate_and_are_secured(tmp_path: Path) -> None:
    ca_dir, nodes_dir, admin_dir = tmp_path / "kafka", tmp_path / "brokers", tmp_path / "admin"
    scripts = write_compose_cluster(ca_dir, HOSTS, nodes_dir, admin_dir, owner=os.getuid())
    assert [s.parent for s in scripts] == [nodes_dir / h for h in HOSTS]
    assert (ca_dir / "tls" / "ca.key.pem").is_file()
    assert sorted(p.name for p in admin_dir.iterdir()) == sorted([f"{ADMIN_USER}.json", "ca.pem"])
    for script in scripts:
        node_dir = script.parent
        # A broker's volume holds its keystore and the CA certificate, never the CA's private key.
        files = sorted(str(p.relative_to(node_dir)) for p in node_dir.rglob("*") if p.is_file())
        assert files == ["server.properties", "start.sh", "tls/broker.p12", "tls/ca.pem"]
        assert all((node_dir / f).stat().st_mode & 0o077 == 0 for f in files)
        assert {(node_dir / f).stat().st_uid for f in files} == {os.getuid()}
        props = dict(line.split("=", 1) for line in (node_dir / "server.properties").read_text().splitlines() if line)
        assert props["ssl.keystore.location"] == str(node_dir / "tls" / "broker.p12")
        assert props["ssl.truststore.location"] == str(node_dir / "tls" / "ca.pem")
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["controller.quorum.voters"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert props["listener.security.protocol.map"] == "CLIENTS:SASL_SSL,STREAM:SASL_SSL,CONTROLLER:SSL"
        assert "--add-scram" in script.read_text()
        assert script.stat().st_mode & 0o077 == 0
    # Re-running keeps the cluster id and the super user's password.
    before = (scripts[0]).read_text()
    write_compose_cluster(ca_dir, HOSTS, nodes_dir, admin_dir)
    assert scripts[0].read_text() == before


def test_prometheus_runs_with_the_config_rendered_for_the_catalogue(compose: dict[str, Any]) -> None:
    services = compose["services"]
    render = services["prometheus-config"]
    assert render["command"][:3] == ["python", "-m", "sharebus_cli.compose_prometheus"]
    out = Path(render["command"][render["command"].index("--out") + 1])
    rules_dir = render["command"][render["command"].index("--rules-dir") + 1]
    prometheus = services["prometheus"]
    assert prometheus["depends_on"]["prometheus-config"]["condition"] == "service_completed_successfully"
    # The volume the config is written to is the one Prometheus reads it from.
    written = {m: v for v, (m, _) in _volumes(render).items()}
    read = {v: m for v, (m, _) in _volumes(prometheus).items()}
    volume = written[str(out.parent)]
    assert f"--config.file={read[volume]}/{out.name}" in prometheus["command"]
    assert _volumes(prometheus)[volume][1], "Prometheus only reads the rendered config"
    # The project's alert rules are where the rendered config names them.
    assert any(str(v).endswith(f"deploy/prometheus:{rules_dir}:ro") for v in prometheus["volumes"])
