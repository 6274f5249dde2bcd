"""The brokers' side of docker-compose.yml: ``python -m sharebus_broker compose-config``.

Writes, into the shared volume (mounted at the same path in every container), what the launcher
writes for a local cluster: the CA and the brokers' keystore (valid for every broker's host name),
the super user's credential, one server.properties per node from ``config.node_properties``, and
a start script per node that formats its storage once (with the super user's SCRAM credential)
and runs Kafka. Re-running keeps the CA, the passwords and the cluster id.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from sharebus_broker.config import ClusterShape, NodeAddress, node_properties, write_properties
from sharebus_broker.launcher import new_cluster_id
from sharebus_broker.tls import ensure_broker_tls
from sharebus_core.kafka import KafkaAccess, read_credentials_file, write_credentials_file
from sharebus_core.principals import ADMIN_USER

# The apache/kafka image's layout.
KAFKA_HOME = "/opt/kafka"
LOG_DIR = "/var/lib/kafka/data"
CLIENT_PORT, CONTROLLER_PORT, STREAM_PORT = 9092, 9093, 9094


def _admin_password(directory: Path, bootstrap: str, ca_file: Path) -> str:
    path = directory / "credentials" / f"{ADMIN_USER}.json"
    if path.is_file():
        return read_credentials_file(path).password.get_secret_value()
    password = secrets.token_urlsafe(24)
    write_credentials_file(
        path, KafkaAccess(bootstrap=bootstrap, username=ADMIN_USER, password=SecretStr(password), ca_file=ca_file)
    )
    return password


def _cluster_id(directory: Path) -> str:
    path = directory / "cluster-id"
    if not path.is_file():
        path.write_text(new_cluster_id())
    return path.read_text().strip()


def _start_script(config: Path, cluster_id: str, password: str) -> str:
    scram = f"SCRAM-SHA-512=[name={ADMIN_USER},password={password}]"
    return (
        "#!/bin/sh\n"
        "# Written by python -m sharebus_broker compose-config: format once (keeping the data), then run.\n"
        "set -e\n"
        f"{KAFKA_HOME}/bin/kafka-storage.sh format --ignore-formatted --cluster-id={cluster_id} "
        f"-c {config} --add-scram '{scram}'\n"
        f"exec {KAFKA_HOME}/bin/kafka-server-start.sh {config}\n"
    )


def write_compose_cluster(directory: Path, hosts: list[str], default_partitions: int = 3) -> list[Path]:
    """Writes every node's config and start script under ``directory``; returns the scripts."""
    nodes = tuple(NodeAddress(i + 1, host, CLIENT_PORT, STREAM_PORT, CONTROLLER_PORT) for i, host in enumerate(hosts))
    shape = ClusterShape(nodes, secured=True, default_partitions=default_partitions, max_reauth_ms=10_000)
    tls = ensure_broker_tls(directory / "tls", hosts)
    password = _admin_password(directory, ",".join(n.client for n in nodes), tls.ca_file)
    cluster_id = _cluster_id(directory)
    scripts = []
    for node in nodes:
        node_dir = directory / f"node-{node.node_id}"
        config = write_properties(
            node_dir / "server.properties",
            node_properties(shape, node, Path(LOG_DIR), tls, password, bind_host="0.0.0.0"),
        )
        script = node_dir / "start.sh"
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
        os.fchmod(fd, 0o700)
        with os.fdopen(fd, "w") as handle:
            handle.write(_start_script(config, cluster_id, password))
        scripts.append(script)
    return scripts


__all__ = ["write_compose_cluster"]
