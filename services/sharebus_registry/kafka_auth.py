"""The broker as the registry's authority on credentials: a credential is good when Kafka takes it.

One credential per principal serves Kafka and the registry, so there is nothing to store or keep in
step here: issuing, rotating and revoking a SCRAM credential changes what the registry accepts too.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException

from sharebus_core.kafka import KafkaAccess, is_credential_refusal
from sharebus_registry.auth import VerifierUnavailable

log = logging.getLogger(__name__)


class KafkaCredentialVerifier:
    """Opens a short-lived admin client as the user and asks for metadata.

    Metadata needs no ACL (the broker lists only what the principal may describe), so a good
    credential answers whatever it is allowed; a refused one is reported through ``error_cb``
    (librdkafka retries the login and would otherwise only time out).
    """

    def __init__(self, access: KafkaAccess, timeout_s: float = 10.0) -> None:
        self.access = access
        self.timeout_s = timeout_s

    def __call__(self, username: str, password: str) -> bool:
        errors: list[KafkaError] = []
        client = self.access.as_user(username, password).admin(
            # log_level 0: librdkafka would log every refused login to stderr; the registry logs its own line.
            {"error_cb": errors.append, "log_level": 0, "socket.connection.setup.timeout.ms": 5000}
        )
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                client.list_topics(timeout=0.25)
            except KafkaException:
                pass
            else:
                return True
            client.poll(0)  # serves error_cb
            if any(is_credential_refusal(error) for error in errors):
                return False
            if time.monotonic() >= deadline:
                last = errors[-1].str() if errors else "no answer"
                log.warning("cannot verify a credential: the broker did not answer (%s)", last)
                raise VerifierUnavailable("the Kafka cluster did not answer")


__all__ = ["KafkaCredentialVerifier"]
