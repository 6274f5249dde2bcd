"""SCRAM-SHA-512 users of systems and bus services, through the Admin API.

A password is random (``secrets.token_urlsafe``), handed back once as a ``SecretStr`` and never
stored by the bus: Kafka keeps only the salted SCRAM verifier. Revoking deletes the credential, so
the next connection is refused at once, and connections already open are closed when they next
re-authenticate (the broker's ``connections.max.reauth.ms``, 10 s in the launcher).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass

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

from sharebus_access.errors import AlreadyIssued, CredentialError, NotIssued
from sharebus_access.reconcile import reconcile
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import SERVICES, Principals, Service

log = logging.getLogger("sharebus.access")

# Kafka's minimum for SCRAM-SHA-512 is 4096; twice that costs ~10 ms per login here.
SCRAM_ITERATIONS = 8192
MECHANISM = ScramMechanism.SCRAM_SHA_512


def new_password() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


@dataclass(frozen=True, slots=True)
class Issued:
    """A credential just made: the only time its password is known."""

    username: str
    password: SecretStr
    access: KafkaAccess


@dataclass(frozen=True, slots=True)
class CredentialStatus:
    system: str
    username: str
    issued: bool
    iterations: int | None


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


def wait_usable(access: KafkaAccess, timeout_s: float = 15.0) -> None:
    """Returns once the broker takes ``access``'s credential (a new one needs a moment to propagate)."""
    client = access.admin()
    try:
        client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise CredentialError(f"the broker does not take the new credential of {access.username}: {exc}") from exc


class SystemCredentials:
    """``sharebus credentials``: one SCRAM user per catalogue system (``<ns>.<system>``)."""

    def __init__(self, admin_access: KafkaAccess, catalogue: Catalogue, namespace: str) -> None:
        self.users = ScramUsers(admin_access)
        self.catalogue = catalogue
        self.principals = Principals(namespace)

    def username(self, system: str) -> str:
        self.catalogue.system(system)  # UnknownSystem names it
        return self.principals.system(system)

    def _set(self, system: str) -> Issued:
        username, password = self.username(system), new_password()
        self.users.upsert({username: password})
        access = self.users.admin_access.as_user(username, password)
        wait_usable(access)
        return Issued(username, password, access)

    def issue(self, system: str) -> Issued:
        """A first credential; refused when the system has one (rotate it instead)."""
        if self.users.exists(self.username(system)):
            raise AlreadyIssued(f"{system} already has a credential; rotate it to get a new one")
        return self._set(system)

    def rotate(self, system: str) -> Issued:
        """A new password; the old one stops working (open connections at their next re-authentication)."""
        if not self.users.exists(self.username(system)):
            raise NotIssued(f"{system} has no credential to rotate; issue one first")
        return self._set(system)

    def renew(self, system: str) -> Issued:
        """Issue or rotate, whichever applies (``sharebus run`` and test fixtures)."""
        return self._set(system)

    def revoke(self, system: str) -> None:
        """Deletes the credential: new connections are refused at once."""
        try:
            self.users.delete(self.username(system))
        except NotIssued as exc:
            raise NotIssued(f"{system} has no credential to revoke") from exc

    def list(self, systems: Iterable[str] | None = None) -> list[CredentialStatus]:
        known = self.users.iterations()
        chosen = sorted(self.catalogue.systems) if systems is None else list(systems)
        statuses = []
        for system in chosen:
            username = self.username(system)
            statuses.append(CredentialStatus(system, username, username in known, known.get(username)))
        return statuses


def ensure_service_principals(
    admin_access: KafkaAccess, namespace: str, services: Iterable[Service] = SERVICES
) -> dict[Service, KafkaAccess]:
    """(Re)creates each service's SCRAM user with a fresh password; returns accesses ready to use.

    A running service keeps its open connections only until it re-authenticates, so call this
    before starting the services, not while they run.
    """
    principals = Principals(namespace)
    passwords = {service: new_password() for service in services}
    ScramUsers(admin_access).upsert({principals.service(s): p for s, p in passwords.items()})
    accesses = {s: admin_access.as_user(principals.service(s), p) for s, p in passwords.items()}
    for access in accesses.values():
        wait_usable(access)
    return accesses


def provision_access(
    admin_access: KafkaAccess,
    catalogue: Catalogue,
    namespace: str,
    services: Iterable[Service] = SERVICES,
    registry_namespace: str | None = None,
) -> dict[Service, KafkaAccess]:
    """The services' principals (fresh passwords) and every ACL of the namespace, applied.

    A registry shared by several namespaces is provisioned in its own: ``provision_access(admin,
    catalogue, regns, services=("registry",))``; the buses then pass ``registry_namespace=regns``
    and leave "registry" out of their ``services``.
    """
    accesses = ensure_service_principals(admin_access, namespace, services)
    plan = reconcile(admin_access, catalogue, namespace, registry_namespace)
    log.info("access for %s provisioned (%s)", namespace, plan.summary())
    return accesses
