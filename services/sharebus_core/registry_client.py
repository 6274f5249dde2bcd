"""The one way to reach the schema registry: its URL and the caller's credential, sent as HTTP Basic.

The registry authenticates every call (but ``GET /``, its readiness probe) with the caller's Kafka
SCRAM credential: one credential per principal for Kafka and the registry. ``BusSettings.registry_auth``
gives it as ``user:password``, the form confluent-kafka's ``basic.auth.user.info`` takes. Every
registry client of the bus is made here, so none forgets the credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from confluent_kafka.schema_registry import SchemaRegistryClient

from sharebus_core.kafka import KafkaAccess


def auth_of(access: KafkaAccess) -> str | None:
    """``user:password`` of a Kafka identity, for the registry (as ``BusSettings.registry_auth``)."""
    if access.username is None or access.password is None:
        return None
    return f"{access.username}:{access.password.get_secret_value()}"


def registry_client(url: str, auth: str | None, conf: Mapping[str, Any] | None = None) -> SchemaRegistryClient:
    """A confluent-kafka registry client for ``url``, authenticated as ``auth`` (``user:password``) when given.

    ``auth`` is None only in the plaintext debugging mode, where there is no credential to send.
    """
    config: dict[str, Any] = {"url": url, **(conf or {})}
    if auth:
        config["basic.auth.user.info"] = auth
    return SchemaRegistryClient(config)


def registry_http_auth(auth: str | None) -> httpx.BasicAuth | None:
    """The same credential for plain httpx calls to the registry (``httpx.Client(auth=...)``)."""
    if not auth:
        return None
    username, _, password = auth.partition(":")
    return httpx.BasicAuth(username, password)


__all__ = ["auth_of", "registry_client", "registry_http_auth"]
