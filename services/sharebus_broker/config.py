"""The server.properties of each node of a local KRaft cluster (combined broker+controller nodes).

Every node has the same secured listeners (SCRAM over TLS for clients, mutual TLS for the
controller quorum) and the same replication rules; only its id, addresses and log directory differ.
docker-compose.yml's init service writes its brokers' files with the same code
(``python -m sharebus_broker compose-config``), so both set-ups run the same configuration.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sharebus_broker.tls import BrokerTls
from sharebus_core.principals import ADMIN_USER
from sharebus_provision.replication import Replication


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """Where one node listens. ``node_id`` starts at 1, as Kafka's examples do."""

    node_id: int
    host: str
    client_port: int
    stream_port: int
    controller_port: int

    @property
    def client(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def stream(self) -> str:
        return f"{self.host}:{self.stream_port}"


@dataclass(frozen=True, slots=True)
class ClusterShape:
    """What every node's file shares: the voters, security and the replication rules."""

    nodes: tuple[NodeAddress, ...]
    secured: bool
    default_partitions: int
    max_reauth_ms: int

    @property
    def replication(self) -> Replication:
        return Replication.for_brokers(len(self.nodes))

    @property
    def voters(self) -> str:
        # A static voter set; Kafka 4 refuses `format --standalone` together with it, so nodes are
        # formatted without it.
        return ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)


def _plaintext_listeners(node: NodeAddress) -> dict[str, str]:
    return {
        "listeners": f"PLAINTEXT://{node.host}:{node.client_port},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.client}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
    }


def _secured_listeners(
    node: NodeAddress, bind_host: str, tls: BrokerTls, admin_password: str, max_reauth_ms: int
) -> dict[str, str]:
    store = {
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(tls.keystore),
        "ssl.keystore.password": tls.keystore_password,
        "ssl.key.password": tls.keystore_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_file),
    }
    scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    jaas = f'{scram_login} username="{ADMIN_USER}" password="{admin_password}";'
    return {
        "listeners": (
            f"CLIENTS://{bind_host}:{node.client_port},STREAM://{bind_host}:{node.stream_port},"
            f"CONTROLLER://{bind_host}:{node.controller_port}"
        ),
        "advertised.listeners": f"CLIENTS://{node.client},STREAM://{node.stream}",
        # CLIENTS and STREAM: SCRAM-SHA-512 over TLS, the same users and ACLs. The controller
        # listener takes only the brokers' own certificate (mutual TLS), so nothing outside the
        # cluster can speak to the quorum. Brokers replicate to each other over CLIENTS, as the
        # super user.
        "listener.security.protocol.map": "CLIENTS:SASL_SSL,STREAM:SASL_SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "CLIENTS",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.clients.scram-sha-512.sasl.jaas.config": jaas,
        "listener.name.stream.scram-sha-512.sasl.jaas.config": jaas,
        **store,
        **{f"listener.name.controller.{k}": v for k, v in store.items()},
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_USER};{tls.broker_principal}",
        # A revoked credential stops working within this time on connections already open:
        # librdkafka (every department's client) re-authenticates in time. aiokafka, under the
        # router's Faust worker, cannot (no KIP-368), and the broker would cut its connections
        # every few seconds, so STREAM does not force it. New connections there are refused
        # at once after a revocation, like everywhere.
        "listener.name.clients.scram-sha-512.connections.max.reauth.ms": str(max_reauth_ms),
    }


def _replication_config(shape: ClusterShape) -> dict[str, str]:
    """The cluster's defaults: every topic created with replication factor -1 (all of the bus's) gets
    them, and so do the internal topics (committed offsets, transactions, share groups)."""
    replication = shape.replication
    factor, min_isr = str(replication.factor), str(replication.min_insync)
    return {
        "default.replication.factor": factor,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": factor,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_isr,
        # A replica that was down never becomes leader with records missing.
        "unclean.leader.election.enable": "false",
    }


def node_properties(
    shape: ClusterShape,
    node: NodeAddress,
    log_dir: Path,
    tls: BrokerTls | None,
    admin_password: str | None,
    bind_host: str | None = None,
) -> dict[str, str]:
    """One node's server.properties. ``bind_host``: where it listens when that is not its advertised host
    (0.0.0.0 in a container)."""
    if shape.secured:
        if tls is None or admin_password is None:
            raise ValueError("a secured node needs the cluster's TLS keystore and the admin's password")
        listeners = _secured_listeners(node, bind_host or node.host, tls, admin_password, shape.max_reauth_ms)
    else:
        listeners = _plaintext_listeners(node)
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": shape.voters,
        "controller.listener.names": "CONTROLLER",
        **listeners,
        "log.dirs": str(log_dir),
        "num.partitions": str(shape.default_partitions),
        **_replication_config(shape),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.num.partitions": "10",
        # Let consumer groups form at once: nothing on a local cluster is worth waiting for.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.check.interval.ms": "60000",
    }


def write_properties(path: Path, properties: dict[str, str]) -> Path:
    """Writes a properties file readable by its owner only: it holds the keystore password and the
    brokers' own SCRAM login."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"{k}={v}\n" for k, v in properties.items()))
    return path


def bootstrap_of(nodes: Sequence[NodeAddress]) -> str:
    return ",".join(n.client for n in nodes)


__all__ = ["ClusterShape", "NodeAddress", "bootstrap_of", "node_properties", "write_properties"]
