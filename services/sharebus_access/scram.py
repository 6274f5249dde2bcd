"""SCRAM-SHA-512 users on the cluster, through the Admin API, and which of a namespace's are stale.

Separate from ``credentials`` so that the reconciler, which ``credentials`` uses, can list users too.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future

from confluent_kafka import KafkaError, KafkaException

# Not re-exported by name from confluent_kafka.admin (for the type checker).
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from sharebus_access.errors import CredentialError, NotIssued
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Principals

# Kafka's minimum for SCRAM-SHA-512 is 4096; twice that costs ~10 ms per login here.
SCRAM_ITERATIONS = 8192
MECHANISM = ScramMechanism.SCRAM_SHA_512


class ScramUsers:
    """SCRAM users on the cluster, changed with the admin access."""

    def __init__(self, admin_access: KafkaAccess, timeout_s: float = 30.0) -> None:
        self.admin_access = admin_access
        self._admin = admin_access.admin()
        self._timeout_s = timeout_s

    def _alter(self, alterations: list[UserScramCredentialAlteration]) -> None:
        if not alterations:
            return
        futures = self._admin.alter_user_scram_credentials(alterations, request_timeout=self._timeout_s)
        for user, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                error = exc.args[0]
                if isinstance(error, KafkaError) and error.code() == KafkaError.RESOURCE_NOT_FOUND:
                    raise NotIssued(f"{user} has no credential") from exc
                raise CredentialError(f"cannot change the credential of {user}: {exc}") from exc

    def upsert(self, passwords: dict[str, SecretStr]) -> None:
        info = ScramCredentialInfo(MECHANISM, SCRAM_ITERATIONS)
        self._alter(
            [UserScramCredentialUpsertion(u, info, p.get_secret_value().encode()) for u, p in sorted(passwords.items())]
        )

    def delete(self, username: str) -> None:
        self._alter([UserScramCredentialDeletion(username, MECHANISM)])

    def iterations(self) -> dict[str, int]:
        """Every SCRAM-SHA-512 user of the cluster and its iteration count."""
        try:
            # Without a list of users the call returns one future (of every user's description).
            future = self._admin.describe_user_scram_credentials(request_timeout=self._timeout_s)
            assert isinstance(future, Future)
            described = future.result()
        except KafkaException as exc:
            raise CredentialError(f"cannot list the SCRAM users: {exc}") from exc
        found = {}
        for user, description in described.items():
            for info in description.scram_credential_infos:
                if info.mechanism == MECHANISM:
                    found[user] = int(info.iterations)
        return found

    def exists(self, username: str) -> bool:
        return username in self.iterations()


def removed_systems(usernames: Iterable[str], catalogue: Catalogue, namespace: str) -> tuple[str, ...]:
    """Systems of ``namespace`` that have a SCRAM user but that the catalogue no longer has, sorted."""
    principals = Principals(namespace)
    systems = (principals.system_of(user) for user in usernames)
    return tuple(sorted(s for s in systems if s is not None and s not in catalogue.systems))
