"""SCRAM-SHA-512 users of systems and bus services, through the Admin API.

A password is random (``secrets.token_urlsafe``), handed back once as a ``SecretStr`` and never
stored by the bus: Kafka keeps only the salted SCRAM verifier. Revoking deletes the credential, so
the next connection is refused at once, and connections already open are closed when they next
re-authenticate (the broker's ``connections.max.reauth.ms``, 10 s in the launcher).

A system removed from the catalogue keeps its credential until it is revoked (docs/security.md,
"A system leaves the catalogue"): it is listed, marked, and may still be revoked by its code.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaException
from pydantic import SecretStr

from sharebus_access.errors import AlreadyIssued, CredentialError, NotIssued
from sharebus_access.reconcile import reconcile
from sharebus_access.scram import MECHANISM, SCRAM_ITERATIONS, ScramUsers, removed_systems
from sharebus_core.catalogue import Catalogue, UnknownSystem
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import SERVICES, Principals, Service

log = logging.getLogger("sharebus.access")

__all__ = [
    "MECHANISM",
    "SCRAM_ITERATIONS",
    "CredentialStatus",
    "Issued",
    "ScramUsers",
    "SystemCredentials",
    "ensure_service_principals",
    "new_password",
    "provision_access",
    "wait_usable",
]


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
    # False for a system the catalogue no longer has, whose credential still logs in: revoke it.
    in_catalogue: bool = True


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
        """Deletes the credential: new connections are refused at once.

        Also for a system the catalogue no longer has, whose credential would otherwise stay: only
        a code that is neither in the catalogue nor has a credential is unknown.
        """
        known = system in self.catalogue.systems
        try:
            self.users.delete(self.principals.system(system))
        except NotIssued as exc:
            if not known:
                raise UnknownSystem(system) from exc
            raise NotIssued(f"{system} has no credential to revoke") from exc

    def list(self, systems: Iterable[str] | None = None) -> list[CredentialStatus]:
        """The catalogue's systems (or ``systems``), and every removed system that still has a credential."""
        known = self.users.iterations()
        if systems is not None:
            return [self._status(system, known) for system in systems]
        removed = removed_systems(known, self.catalogue, self.principals.namespace)
        return [self._status(system, known) for system in [*sorted(self.catalogue.systems), *removed]]

    def _status(self, system: str, known: dict[str, int]) -> CredentialStatus:
        """``UnknownSystem`` for a code that is neither in the catalogue nor has a credential."""
        username, in_catalogue = self.principals.system(system), system in self.catalogue.systems
        if not in_catalogue and username not in known:
            raise UnknownSystem(system)
        return CredentialStatus(system, username, username in known, known.get(username), in_catalogue)


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
