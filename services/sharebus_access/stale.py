"""Credentials the catalogue no longer backs, as the reconciler reports them (docs/security.md).

The ACLs follow the catalogue by themselves: a system's rules are worked out from it on every run,
so a system removed, moved or stripped of a class loses what it no longer may do at that run. A
SCRAM credential does not: it is a password a department was handed. The reconciler does not
revoke one on its own (a catalogue edit is undone in a minute, a revoked password needs a new one
handed over); it says so on every run instead, until someone revokes or rotates it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge

from sharebus_access.scram import ScramUsers, removed_systems
from sharebus_core.catalogue import Catalogue
from sharebus_core.principals import Principals

log = logging.getLogger("sharebus.access")


def moved_systems(before: Mapping[str, str], now: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """System -> (department before, department now), for each system in both that changed department."""
    return {system: (before[system], dept) for system, dept in now.items() if before.get(system, dept) != dept}


class CredentialWatch:
    """Each run: which removed systems still have a credential (gauge and warnings), and which moved."""

    def __init__(self, users: ScramUsers, namespace: str, registry: CollectorRegistry) -> None:
        self.users = users
        self.principals = Principals(namespace)
        self.removed = Gauge(
            "sharebus_acl_removed_system_credentials",
            "Systems the catalogue no longer has whose Kafka credential still logs in (revoke them)",
            registry=registry,
        )
        self._departments: Mapping[str, str] | None = None

    def check(self, catalogue: Catalogue) -> tuple[str, ...]:
        """The removed systems that still have a credential; each is logged as a warning, every run."""
        users = self.users.iterations()
        removed = removed_systems(users, catalogue, self.principals.namespace)
        self.removed.set(len(removed))
        for system in removed:
            log.warning(
                "system %s is not in the catalogue, but its Kafka credential %s still logs in (its ACLs are gone); "
                "revoke it: sharebus credentials revoke --system %s",
                system,
                self.principals.system(system),
                system,
            )
        self._report_moves(catalogue, users)
        return removed

    def _report_moves(self, catalogue: Catalogue, users: Mapping[str, int]) -> None:
        # Known only within this process's life: the catalogue keeps no history.
        before, self._departments = self._departments, dict(catalogue.department_of_system)
        for system, (old, new) in moved_systems(before or {}, catalogue.department_of_system).items():
            if self.principals.system(system) in users:
                log.warning(
                    "system %s moved from %s to %s: its ACLs now follow the catalogue, but its Kafka credential "
                    "is still the one %s was given; rotate it (sharebus credentials rotate --system %s) and hand "
                    "the new one to %s",
                    system,
                    old,
                    new,
                    old,
                    system,
                    new,
                )
