"""The one way to reach Kafka: who we are (a SCRAM principal over TLS) and the clients built from it.

Every consumer, producer and admin client of the bus is made here, from a ``KafkaAccess``: the
bootstrap servers, the principal's SCRAM-SHA-512 credential and the CA that signed the broker's
certificate. Clients verify the broker's certificate; there is no insecure default. Plaintext is an
opt-in for debugging (``SHAREBUS_KAFKA_SECURITY_PROTOCOL=PLAINTEXT``) and ``sharebus run`` warns
loudly when it is on.
"""

from __future__ import annotations

import json
import os
import ssl
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient
from pydantic import BaseModel, ConfigDict, SecretStr

from sharebus_core.errors import SharebusError

SecurityProtocol = Literal["SASL_SSL", "PLAINTEXT"]
SASL_MECHANISM = "SCRAM-SHA-512"


class KafkaAccessError(SharebusError, RuntimeError):
    """The settings do not name a usable identity (a missing password, an unreadable CA file)."""


class KafkaAccess(BaseModel):
    """How one principal reaches the cluster. Frozen, so it can be shared between threads."""

    model_config = ConfigDict(frozen=True)

    bootstrap: str
    # Where aiokafka (the router's Faust worker) connects: a listener that does not force
    # re-authentication, which aiokafka cannot do. None: the same as ``bootstrap``.
    stream_bootstrap: str | None = None
    security_protocol: SecurityProtocol = "SASL_SSL"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None

    @property
    def principal(self) -> str:
        return f"User:{self.username}" if self.username else "User:ANONYMOUS"

    @property
    def secured(self) -> bool:
        return self.security_protocol == "SASL_SSL"

    def as_user(self, username: str, password: SecretStr | str) -> KafkaAccess:
        """The same cluster, another principal."""
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        return self.model_copy(update={"username": username, "password": secret})

    def streaming(self) -> KafkaAccess:
        """The same principal on the listener that does not force re-authentication (``stream_bootstrap``).

        For the router's own clients only. librdkafka re-authenticates at 90% of the broker's 10 s
        session, after its in-flight requests finish: on a loaded broker a Fetch naming 9,510 partitions
        took 1-4.5 s, the session ran out first, and the broker cut the connection with its requests
        (``make bench-scale``: up to 182 cuts of the router's clients in one run).
        """
        if self.stream_bootstrap is None:
            return self
        return self.model_copy(update={"bootstrap": self.stream_bootstrap})

    def check(self) -> None:
        """Raises ``KafkaAccessError`` naming what is missing; plaintext needs nothing."""
        if not self.secured:
            return
        if not self.username or self.password is None:
            raise KafkaAccessError(
                "no Kafka credential: set SHAREBUS_KAFKA_USERNAME and SHAREBUS_KAFKA_PASSWORD "
                "(or SHAREBUS_KAFKA_CREDENTIALS_FILE)"
            )
        if self.ca_file is None or not self.ca_file.is_file():
            raise KafkaAccessError(
                f"the CA file that signed the broker's certificate is missing ({self.ca_file}); "
                "set SHAREBUS_KAFKA_CA_FILE"
            )

    def client_config(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """confluent-kafka (librdkafka) settings for this principal, plus ``extra``."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap}
        if self.secured:
            self.check()
            assert self.password is not None
            config.update(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": SASL_MECHANISM,
                    "sasl.username": self.username,
                    "sasl.password": self.password.get_secret_value(),
                    "ssl.ca.location": str(self.ca_file),
                    # Verify the broker's certificate and its name (librdkafka's default, said out loud).
                    "enable.ssl.certificate.verification": True,
                    "ssl.endpoint.identification.algorithm": "https",
                }
            )
        config.update(extra or {})
        return config

    def consumer(self, config: Mapping[str, Any] | None = None) -> Consumer:
        return Consumer(self.client_config(config))

    def producer(self, config: Mapping[str, Any] | None = None) -> Producer:
        """A producer whose records count as sent only once every in-sync replica has them (``acks=all``):
        with ``min.insync.replicas=2`` on three brokers, no acknowledged record is on one disk only.
        ``config`` cannot weaken it."""
        return Producer(self.producer_config(config))

    def producer_config(self, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.client_config({**(config or {}), "acks": "all"})

    def admin(self, config: Mapping[str, Any] | None = None) -> AdminClient:
        return AdminClient(self.client_config(config))

    def private_group(self, purpose: str) -> str:
        """A group id of this principal's own (``<user>.<purpose>-<random>``), for readers that never commit.

        librdkafka wants a group id even for ``assign()``; naming it under the principal keeps it
        inside the groups the principal's ACLs allow.
        """
        return f"{self.username or 'anonymous'}.{purpose}-{uuid.uuid4().hex[:8]}"

    def env(self) -> dict[str, str]:
        """The environment that gives a child process this identity (its settings read these)."""
        env = {"SHAREBUS_BOOTSTRAP": self.bootstrap, "SHAREBUS_KAFKA_SECURITY_PROTOCOL": self.security_protocol}
        if self.stream_bootstrap is not None:
            env["SHAREBUS_KAFKA_STREAM_BOOTSTRAP"] = self.stream_bootstrap
        if self.username is not None:
            env["SHAREBUS_KAFKA_USERNAME"] = self.username
        if self.password is not None:
            env["SHAREBUS_KAFKA_PASSWORD"] = self.password.get_secret_value()
        if self.ca_file is not None:
            env["SHAREBUS_KAFKA_CA_FILE"] = str(self.ca_file)
        return env

    def settings_fields(self) -> dict[str, Any]:
        """The ``BusSettings`` fields that give a settings object this identity."""
        return {
            "bootstrap_servers": self.bootstrap,
            "kafka_stream_bootstrap": self.stream_bootstrap,
            "kafka_security_protocol": self.security_protocol,
            "kafka_username": self.username,
            "kafka_password": self.password,
            "kafka_ca_file": self.ca_file,
        }

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting only the bus's CA (for aiokafka, under Faust)."""
        self.check()
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = True
        return context


_REFUSAL_CODES = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


class UnreadableHeaders(SharebusError, ValueError):
    """A record's headers cannot be read: the record is the publisher's fault, never the reader's end."""


def message_headers(msg: Message) -> list[tuple[str, bytes | None]]:
    """A consumed record's headers (an empty list for none).

    confluent-kafka raises ``SystemError`` for a header name that is not UTF-8, which any client that writes
    raw bytes (kcat, librdkafka in C) can publish; calling again is not safe (it hands back a NULL name). So
    every failure is ``UnreadableHeaders``, which a reader of provider-written topics treats as that one
    record's fault (a dead letter, a record skipped), not as its own."""
    try:
        raw = msg.headers()
    except Exception as exc:
        raise UnreadableHeaders(f"the record's headers cannot be read ({type(exc).__name__}: {exc})") from exc
    if isinstance(raw, dict):
        return [(name, value.encode() if isinstance(value, str) else value) for name, value in raw.items()]
    # As consumed, a list of (str, bytes | None): handed on as it is (once per record on the data path).
    return cast(list[tuple[str, bytes | None]], raw or [])


def is_credential_refusal(error: KafkaError) -> bool:
    """Whether the broker refused the credential itself (wrong, revoked or expired).

    librdkafka also reports a broker that goes away during the SASL handshake (one of several
    brokers stopping or restarting) as an authentication error, worded "mechanism handshake failed:
    Local: Broker transport failure". That is an outage the client rides out on the other brokers,
    not a refusal: treating it as one would stop a healthy client while one broker restarts.
    """
    if error.code() not in _REFUSAL_CODES:
        return False
    return "transport failure" not in error.str().lower()


class CredentialsFile(BaseModel):
    """A credential file as ``sharebus credentials issue --out`` writes it (JSON, mode 0600)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    username: str
    password: SecretStr
    ca_file: Path | None = None


def read_credentials_file(path: Path) -> CredentialsFile:
    try:
        return CredentialsFile.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KafkaAccessError(f"cannot read the Kafka credential file {path}: {exc}") from exc


def write_credentials_file(path: Path, access: KafkaAccess) -> None:
    """Writes ``access``'s credential for its holder, readable by the owner only."""
    if access.username is None or access.password is None:
        raise KafkaAccessError("no credential to write")
    data = {"username": access.username, "password": access.password.get_secret_value(), "bootstrap": access.bootstrap}
    if access.ca_file is not None:
        data["ca_file"] = str(access.ca_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # An existing file keeps its mode through O_TRUNC: make it the owner's only before writing.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)


__all__ = [
    "SASL_MECHANISM",
    "CredentialsFile",
    "KafkaAccess",
    "KafkaAccessError",
    "SecurityProtocol",
    "is_credential_refusal",
    "read_credentials_file",
    "write_credentials_file",
]
