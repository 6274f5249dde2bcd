"""The brokers' side of docker-compose.yml: ``python -m sharebus_broker compose-config``.

Writes what the launcher writes for a local cluster, split so that each container holds only its own:
- ``directory`` (kafka-init's own volume, seen by no other container): the CA and its private key, the
  brokers' keystore, the super user's credential and the cluster id;
- ``nodes_dir/<host>`` (one volume per broker, mounted read-only at the same path in that broker):
  the keystore and CA certificate, its server.properties from ``config.node_properties`` and a start
  script that formats its storage once (with the super user's SCRAM credential) and runs Kafka;
- ``admin_dir`` (for bus-init only): the super user's credential and the CA certificate.
Files are 0600 and, given ``owner``, owned by the broker's uid (the init runs as root; brokers do not).
Re-running keeps the CA, the passwords and the cluster id.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import replace
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


def _copy_private(source: Path, target: Path, owner: int | None) -> Path:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    _own(target, owner)
    return target


def _own(path: Path, owner: int | None) -> None:
    if owner is not None:
        os.chown(path, owner, owner)


def write_compose_cluster(
    directory: Path,
    hosts: list[str],
    nodes_dir: Path,
    admin_dir: Path,
    owner: int | None = None,
    default_partitions: int = 3,
) -> list[Path]:
    """Writes the CA under ``directory`` and each node's files under ``nodes_dir/<host>``; returns the scripts."""
    nodes = tuple(NodeAddress(i + 1, host, CLIENT_PORT, STREAM_PORT, CONTROLLER_PORT) for i, host in enumerate(hosts))
    shape = ClusterShape(nodes, secured=True, default_partitions=default_partitions, max_reauth_ms=10_000)
    tls = ensure_broker_tls(directory / "tls", hosts)
    password = _admin_password(directory, ",".join(n.client for n in nodes), tls.ca_file)
    _copy_private(directory / "credentials" / f"{ADMIN_USER}.json", admin_dir / f"{ADMIN_USER}.json", None)
    _copy_private(tls.ca_file, admin_dir / "ca.pem", None)
    cluster_id = _cluster_id(directory)
    scripts = []
    for node in nodes:
        node_dir = nodes_dir / node.host
        node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _own(node_dir, owner)
        # The node's own copy of the keystore and CA certificate: never the CA's key.
        node_tls = replace(
            tls,
            ca_file=_copy_private(tls.ca_file, node_dir / "tls" / "ca.pem", owner),
            keystore=_copy_private(tls.keystore, node_dir / "tls" / "broker.p12", owner),
        )
        _own(node_dir / "tls", owner)
        config = write_properties(
            node_dir / "server.properties",
            node_properties(shape, node, Path(LOG_DIR), node_tls, password, bind_host="0.0.0.0"),
        )
        _own(config, owner)
        script = node_dir / "start.sh"
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
        os.fchmod(fd, 0o700)
        with os.fdopen(fd, "w") as handle:
            handle.write(_start_script(config, cluster_id, password))
        _own(script, owner)
        scripts.append(script)
    return scripts


__all__ = ["write_compose_cluster"]
