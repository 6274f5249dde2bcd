"""Who an SDK client is: the system behind its Kafka credential, and clear errors when it is refused.

The broker decides what a credential may do; these checks only turn its refusals (and a missing
credential) into errors that name the system, instead of librdkafka's retries and timeouts.
"""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaError
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sharebus_core.kafka import KafkaAccessError, is_credential_refusal
from sharebus_core.principals import Principals
from sharebus_core.settings import BusSettings
from sharebus_sdk.errors import CredentialError, NotAuthorised

_AUTHZ_CODES = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}


class ClientIdentity:
    """The credential an SDK client runs with, and what the broker said about it."""

    def __init__(self, settings: BusSettings, acting_for: str) -> None:
        self.acting_for = acting_for
        try:
            self.access = settings.kafka
            self.access.check()
        except KafkaAccessError as exc:
            raise CredentialError(f"{acting_for}: {exc}") from exc
        username = self.access.username or ""
        self.system = Principals(settings.namespace).system_of(username) if username else None
        self._refusal: str | None = None
        self._lock = threading.Lock()

    def client_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` plus an error callback that remembers an authentication refusal."""
        return {**config, "error_cb": self._on_error}

    def _on_error(self, error: KafkaError) -> None:
        if is_credential_refusal(error):
            with self._lock:
                self._refusal = error.str()

    def raise_if_refused(self) -> None:
        with self._lock:
            refusal = self._refusal
        if refusal is not None:
            raise CredentialError(
                f"{self.acting_for}: Kafka refused the credential of {self.access.username} "
                f"(wrong, revoked or expired; ask the bureau for a new one): {refusal}"
            )

    def translate(self, error: KafkaError, what: str) -> Exception | None:
        """A clear SDK error for a broker refusal, or None when the error is something else."""
        if is_credential_refusal(error):
            return CredentialError(
                f"{self.acting_for}: Kafka refused the credential of {self.access.username}: {error.str()}"
            )
        if error.code() in _AUTHZ_CODES:
            return NotAuthorised(f"{self.acting_for} ({self.access.username}) is not allowed to {what}: {error.str()}")
        return None

    def translate_registry(self, error: Exception, what: str) -> Exception | None:
        """The same for the schema registry, which takes the same credential (HTTP 401 and 403)."""
        status = error.http_status_code if isinstance(error, SchemaRegistryError) else None
        if status == 401:
            return CredentialError(
                f"{self.acting_for}: the schema registry refused the credential of {self.access.username}: {error}"
            )
        if status == 403:
            return NotAuthorised(f"{self.acting_for} ({self.access.username}) is not allowed to {what}: {error}")
        return None


__all__ = ["ClientIdentity"]
