"""The grants as the portal follows them: rebuilt from the grants log, never read whole on a request."""

from __future__ import annotations

import threading

from sharebus_core.grants import Grant
from sharebus_grants import visible_to


class GrantView:
    """Every grant's latest verified state, and its history (each state it went through), by grant id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self._history: dict[str, list[Grant]] = {}

    def put(self, grant: Grant) -> None:
        with self._lock:
            history = self._history.setdefault(grant.grant_id, [])
            # The portal puts what it wrote at once, and the follower brings the same event again.
            if not history or history[-1] != grant:
                history.append(grant)
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
