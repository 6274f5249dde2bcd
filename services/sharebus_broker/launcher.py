"""Formats and starts a local KRaft cluster of N combined broker+controller nodes, and waits until
every node answers. ``SHAREBUS_BROKERS`` sets N (1 by default)."""

from __future__ import annotations

import base64
import secrets
import socket
import time
import uuid
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from sharebus_broker.config import ClusterShape, NodeAddress, bootstrap_of, node_properties, write_properties
from sharebus_broker.jars import resolve_jars
from sharebus_broker.node import BrokerNode, BrokerStartError, read_cluster_id
from sharebus_broker.saved_ports import node_addresses, save_ports
from sharebus_broker.settings import BrokerSettings
from sharebus_broker.tls import BrokerTls, ensure_broker_tls
from sharebus_core.kafka import KafkaAccess, read_credentials_file, write_credentials_file
from sharebus_core.ports import free_port
from sharebus_core.principals import ADMIN_USER
from sharebus_core.processes import log_tail
from sharebus_provision.replication import Replication


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (url-safe base64 of a UUID).

    Like Kafka's own ``Uuid.randomUuid``, it never starts with '-': the storage tool's argument
    parser would take such an id for an option and refuse to format.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _existing_node_count(data_dir: Path) -> int | None:
    """How many nodes the data dir was formatted for: one keeps its storage in ``logs``, several in
    ``node-<id>/logs``; None when nothing is formatted yet."""
    if (data_dir / "logs" / "meta.properties").exists():
        return 1
    formatted = [d for d in data_dir.glob("node-*") if (d / "logs" / "meta.properties").exists()]
    return len(formatted) or None


class KafkaBroker:
    """The local Kafka cluster (one node by default). Use as a context manager, or call ``start``/``stop``."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.secured = settings.security == "sasl_ssl"
        # Ports not set in the settings are chosen once and reused on every restart (saved_ports.py).
        fixed = (settings.port, settings.stream_port, settings.controller_port)
        addresses = node_addresses(self.data_dir, settings.host, settings.brokers, fixed)
        self.shape = ClusterShape(addresses, self.secured, settings.default_partitions, settings.max_reauth_ms)
        self.nodes = [self._node(address, settings.brokers) for address in addresses]
        self._admin_password: SecretStr | None = None
        self._tls: BrokerTls | None = None

    def _node(self, address: NodeAddress, count: int) -> BrokerNode:
        name = self.data_dir.name
        if count == 1:
            # The layout of a one-broker data dir is unchanged from before clusters.
            return BrokerNode(self.settings, address, self.data_dir, self.data_dir.parent / f"{name}-broker.log")
        return BrokerNode(
            self.settings,
            address,
            self.data_dir / f"node-{address.node_id}",
            self.data_dir.parent / f"{name}-broker-{address.node_id}.log",
        )

    @property
    def port(self) -> int:
        return self.nodes[0].address.client_port

    @property
    def bootstrap(self) -> str:
        return bootstrap_of(self.shape.nodes)

    @property
    def stream_bootstrap(self) -> str:
        """The listeners for the router's Faust worker (aiokafka cannot re-authenticate; see config.py)."""
        return ",".join(n.stream for n in self.shape.nodes) if self.secured else self.bootstrap

    @property
    def replication(self) -> Replication:
        return self.shape.replication

    @property
    def log_path(self) -> Path:
        """The first node's log (the only one with one broker)."""
        return self.nodes[0].log_path

    @property
    def log_paths(self) -> list[Path]:
        return [node.log_path for node in self.nodes]

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def admin_credentials_file(self) -> Path:
        """The super user's credential (0600): only provisioning and ACL upkeep run with it."""
        return self.data_dir / "credentials" / f"{ADMIN_USER}.json"

    @property
    def admin_access(self) -> KafkaAccess:
        """The cluster's only super user. Nothing but provisioning and ACL upkeep should use it."""
        if not self.secured:
            return KafkaAccess(bootstrap=self.bootstrap, security_protocol="PLAINTEXT")
        password = self._admin_password or self._load_admin_password()
        return KafkaAccess(
            bootstrap=self.bootstrap,
            stream_bootstrap=self.stream_bootstrap,
            username=ADMIN_USER,
            password=password,
            ca_file=self.ca_file,
        )

    def _load_admin_password(self) -> SecretStr:
        path = self.admin_credentials_file
        if path.is_file():
            self._admin_password = read_credentials_file(path).password
        else:
            self._admin_password = SecretStr(secrets.token_urlsafe(24))
            access = KafkaAccess(
                bootstrap=self.bootstrap, username=ADMIN_USER, password=self._admin_password, ca_file=self.ca_file
            )
            write_credentials_file(path, access)
        return self._admin_password

    def _write_configs(self) -> None:
        tls: BrokerTls | None = None
        password: str | None = None
        if self.secured:
            # One certificate for every node: they share the host (its name and localhost).
            tls = self._tls = ensure_broker_tls(self.data_dir / "tls", [self.settings.host])
            password = self._load_admin_password().get_secret_value()
        for node in self.nodes:
            write_properties(node.config_path, node_properties(self.shape, node.address, node.log_dir, tls, password))

    def _check_layout(self) -> None:
        existing = _existing_node_count(self.data_dir)
        if existing is not None and existing != len(self.nodes):
            raise BrokerStartError(
                f"{self.data_dir} holds a cluster of {existing} broker(s), not {len(self.nodes)}: keep "
                f"SHAREBUS_BROKERS={existing}, or start the new cluster in another SHAREBUS_BROKER_DATA_DIR "
                "(a cluster's size is fixed when it is first formatted)"
            )

    def _check_ports(self) -> None:
        # Node 1's client port is checked by start(); a saved port taken since is refused, not replaced,
        # because the clients' credential files name it.
        for node in self.nodes[1:]:
            a = node.address
            taken = [p for p in (a.client_port, a.stream_port, a.controller_port) if port_in_use(a.host, p)]
            if taken:
                raise BrokerStartError(
                    f"port(s) {taken} of broker {a.node_id} on {a.host} (saved in {self.data_dir / 'ports.json'}) "
                    "are in use: stop what holds them, or start the cluster in another SHAREBUS_BROKER_DATA_DIR"
                )

    def _format(self, libs: Path) -> None:
        known = {found for node in self.nodes if (found := read_cluster_id(node.log_dir)) is not None}
        if len(known) > 1:
            raise BrokerStartError(f"the nodes under {self.data_dir} belong to different clusters: {sorted(known)}")
        cluster_id = known.pop() if known else new_cluster_id()
        scram: list[str] = []
        if self.secured:
            # The super user exists from the first start: SCRAM credentials live in the metadata log.
            password = self._load_admin_password().get_secret_value()
            scram = ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={password}]"]
        for node in self.nodes:
            node.format(libs, cluster_id, scram)

    def start(self) -> KafkaBroker:
        first = self.nodes[0].address
        if port_in_use(first.host, first.client_port):
            raise BrokerStartError(
                f"port {first.client_port} on {first.host} is already in use: is another broker running? "
                "Stop it, or choose another port with SHAREBUS_BROKER_PORT."
            )
        self._check_layout()
        self._check_ports()
        libs = resolve_jars(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        save_ports(self.data_dir, self.shape.nodes)
        self._write_configs()
        self._format(libs)
        for node in self.nodes:
            node.spawn(libs)
        brokers = f"{len(self.nodes)} brokers" if len(self.nodes) > 1 else "starting"
        print(
            f"sharebus: Kafka {self.settings.kafka_version} {brokers} on {self.bootstrap} "
            f"(log: {', '.join(str(p) for p in self.log_paths)})",
            flush=True,
        )
        try:
            self._wait_ready(self.nodes)
        except BrokerStartError:
            self.stop()
            raise
        return self

    def _failed_node(self) -> str | None:
        for node in self.nodes:
            code = node.exit_code()
            if code is not None:
                return (
                    f"Kafka node {node.address.node_id} exited with code {code} during start-up. "
                    f"Last lines of {node.log_path}:\n{log_tail(node.log_path)}"
                )
        return None

    def _wait_ready(self, nodes: list[BrokerNode]) -> None:
        """Until each of ``nodes`` answers a metadata request itself, listing itself as a live broker.

        Asked of each node directly: the cluster keeps a killed node in its metadata until its
        session expires, so a peer's answer would say a restarted node is back before it is.
        """
        deadline = time.monotonic() + self.settings.start_timeout_s
        access = self.admin_access
        admins = {
            node.address.node_id: access.model_copy(update={"bootstrap": node.address.client}).admin({"log_level": 0})
            for node in nodes
        }
        waiting, last_error = set(admins), "no answer yet"
        while time.monotonic() < deadline:
            failed = self._failed_node()
            if failed is not None:
                raise BrokerStartError(failed)
            for node_id in sorted(waiting):
                try:
                    metadata = admins[node_id].list_topics(timeout=1.0)
                except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"; kept for the error
                    last_error = f"node {node_id}: {exc}"
                    continue
                # Each client knows only its node until its first answer, so that answer is the node's.
                if node_id in metadata.brokers:
                    waiting.discard(node_id)
            if not waiting:
                return
            time.sleep(0.2)
        logs = "\n".join(f"Last lines of {p}:\n{log_tail(p)}" for p in self.log_paths)
        raise BrokerStartError(
            f"the Kafka cluster did not answer a metadata request on {self.bootstrap} within "
            f"{self.settings.start_timeout_s:.0f}s (nodes {sorted(waiting)} not ready; {last_error}).\n{logs}"
        )

    def is_running(self) -> bool:
        return all(node.is_running() for node in self.nodes)

    def kill_node(self, index: int) -> None:
        """SIGKILLs one node (0-based), as a crash would (for fault tests)."""
        self.nodes[index].kill()

    def restart_node(self, index: int) -> None:
        """Starts a stopped node again, on its ports and data, and waits until the cluster has it back."""
        node = self.nodes[index]
        if node.is_running():
            return
        node.spawn(resolve_jars(self.settings))
        self._wait_ready([node])

    def stop(self, timeout_s: float = 30.0) -> None:
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.stop(timeout_s)

    def kill(self) -> None:
        """Stops every node abruptly, as a crash would (for fault tests)."""
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["BrokerStartError", "KafkaBroker", "free_port", "port_in_use"]
