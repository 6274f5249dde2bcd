"""The grants as the portal follows them: rebuilt from the grants log, never read whole on a request."""

from __future__ import annotations

import threading

from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_grants import visible_to, with_current_parties

# The workflow's steps (sharebus_rules.grant_workflow): rejected and revoked are final.
_NEXT_STATES: dict[GrantState, frozenset[GrantState]] = {
    GrantState.APPLIED: frozenset({GrantState.APPROVED, GrantState.REJECTED}),
    GrantState.APPROVED: frozenset({GrantState.REVOKED}),
}


class GrantView:
    """Every grant's latest verified state, and its history (each state it went through), by grant id.

    A grant is kept with its parties as the catalogue names them now (``with_current_parties``), as
    the gateway's ``GrantService`` reads them: the log keeps the provider and consumer department of
    the day it was applied for, and a class handed to another department since must not stay visible
    to, and decided by, the department that no longer provides it.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self._history: dict[str, list[Grant]] = {}

    def put(self, grant: Grant) -> None:
        grant = with_current_parties(self._catalogue, grant)
        with self._lock:
            # The portal puts what it wrote at once, and the follower brings the same event again, or,
            # when it is behind, an earlier one: that must not bring back a grant the portal saw end
            # (the preview would show its records again), so only a step forward changes the grant.
            before = self._grants.get(grant.grant_id)
            if before is not None and grant.state not in _NEXT_STATES.get(before.state, frozenset()):
                return
            self._history.setdefault(grant.grant_id, []).append(grant)
            self._grants[grant.grant_id] = grant

    def close(self, grant_id: str) -> None:
        """A signed event nobody can read: the grant is no longer shown as in force (see grant_log)."""
        with self._lock:
            self._grants.pop(grant_id, None)

    def visible(self, department: str | None) -> list[Grant]:
        """The grants a department provides or consumes (all of them for the bureau: ``None``), newest first."""
        with self._lock:
            grants = [g for g in self._grants.values() if department is None or visible_to(g, department)]
        return sorted(grants, key=lambda g: g.applied_at, reverse=True)

    def get(self, grant_id: str, department: str | None) -> Grant | None:
        with self._lock:
            grant = self._grants.get(grant_id)
        if grant is None or (department is not None and not visible_to(grant, department)):
            return None
        return grant

    def history(self, grant_id: str) -> list[Grant]:
        with self._lock:
            return list(self._history.get(grant_id, []))
