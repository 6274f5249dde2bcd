"""Formats and starts one combined broker+controller in KRaft mode, and waits until it answers."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from sharebus_broker.jars import resolve_jars
from sharebus_broker.settings import DEPLOY_DIR, BrokerSettings
from sharebus_broker.tls import BrokerTls, ensure_broker_tls
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess, read_credentials_file, write_credentials_file
from sharebus_core.ports import free_port
from sharebus_core.principals import ADMIN_USER
from sharebus_core.processes import die_with_parent, log_tail, stop_process


class BrokerStartError(SharebusError, RuntimeError):
    """The broker did not come up; the message carries the tail of its log."""


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


class KafkaBroker:
    """One local Kafka broker. Use as a context manager, or call ``start``/``stop``."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.port = settings.port or free_port(settings.host)
        self.controller_port = settings.controller_port or free_port(settings.host)
        self.stream_port = settings.stream_port or free_port(settings.host)
        self.data_dir = settings.data_dir
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-broker.log"
        self.secured = settings.security == "sasl_ssl"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_password: SecretStr | None = None
        self._tls: BrokerTls | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.settings.host}:{self.port}"

    @property
    def stream_bootstrap(self) -> str:
        """The listener for the router's Faust worker (aiokafka cannot re-authenticate; see _listener_config)."""
        return f"{self.settings.host}:{self.stream_port}" if self.secured else self.bootstrap

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

    def _listener_config(self) -> dict[str, str]:
        host = self.settings.host
        if not self.secured:
            return {
                "listeners": f"PLAINTEXT://{host}:{self.port},CONTROLLER://{host}:{self.controller_port}",
                "advertised.listeners": f"PLAINTEXT://{host}:{self.port}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT",
            }
        tls = self._tls = ensure_broker_tls(self.data_dir / "tls", [host])
        password = self._load_admin_password().get_secret_value()
        store = {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(tls.keystore),
            "ssl.keystore.password": tls.keystore_password,
            "ssl.key.password": tls.keystore_password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_file),
        }
        scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required"
        jaas = f'{scram_login} username="{ADMIN_USER}" password="{password}";'
        return {
            "listeners": (
                f"CLIENTS://{host}:{self.port},STREAM://{host}:{self.stream_port},"
                f"CONTROLLER://{host}:{self.controller_port}"
            ),
            "advertised.listeners": f"CLIENTS://{host}:{self.port},STREAM://{host}:{self.stream_port}",
            # CLIENTS and STREAM: SCRAM-SHA-512 over TLS, the same users and ACLs. The controller
            # listener takes only the broker's own certificate (mutual TLS), so nothing outside the
            # broker can speak to the quorum.
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
            "listener.name.clients.scram-sha-512.connections.max.reauth.ms": str(self.settings.max_reauth_ms),
        }

    def _write_config(self) -> Path:
        host = self.settings.host
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # A static voter set; Kafka 4 refuses `format --standalone` together with this, so we
            # format without it.
            "controller.quorum.voters": f"1@{host}:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            **self._listener_config(),
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": str(self.settings.default_partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # One broker, no one to wait for: let consumer groups form at once.
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.check.interval.ms": "60000",
        }
        path = self.data_dir / "server.properties"
        # 0600: it holds the keystore password and the broker's own SCRAM login.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("".join(f"{k}={v}\n" for k, v in config.items()))
        return path

    def _java(self, libs: Path, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.settings.heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def _format_if_needed(self, libs: Path, config: Path) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        scram: list[str] = []
        if self.secured:
            # The super user exists from the first start: SCRAM credentials live in the metadata log.
            password = self._load_admin_password().get_secret_value()
            scram = ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={password}]"]
        result = subprocess.run(
            self._java(
                libs, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config), *scram
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerStartError(
                f"formatting Kafka storage in {self.data_dir} failed:\n{(result.stdout + result.stderr)[-3000:]}"
            )

    def start(self) -> KafkaBroker:
        if port_in_use(self.settings.host, self.port):
            raise BrokerStartError(
                f"port {self.port} on {self.settings.host} is already in use: is another broker running? "
                "Stop it, or choose another port with SHAREBUS_BROKER_PORT."
            )
        libs = resolve_jars(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._format_if_needed(libs, config)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed after spawn
        try:
            self._process = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()
        print(
            f"sharebus: Kafka {self.settings.kafka_version} starting on {self.bootstrap} (log: {self.log_path})",
            flush=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.settings.start_timeout_s
        admin = self.admin_access.admin({"log_level": 0})
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise BrokerStartError(
                    f"the Kafka broker exited with code {code} during start-up. Last lines of {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            try:
                metadata = admin.list_topics(timeout=1.0)
                if metadata.brokers:
                    return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"; kept for the error
                last_error = str(exc)
            time.sleep(0.2)
        self.stop()
        raise BrokerStartError(
            f"the Kafka broker did not answer a metadata request on {self.bootstrap} within "
            f"{self.settings.start_timeout_s:.0f}s ({last_error}). "
            f"Last lines of {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout_s)

    def kill(self) -> None:
        """Stops the broker abruptly, as a crash would (for fault tests)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["BrokerStartError", "KafkaBroker", "free_port", "port_in_use"]
