"""The grants as a long-running service follows them: a view kept from the grants log by one background
reader, so that a request answers from memory instead of reading and verifying the whole log.

The log stays the source of truth: the view is only what ``GrantFollower`` has read of it (the same
``GrantHistory`` rules as ``read_grants``: a step forward only, a signed event nobody can read closes
its grant). Two promises make it safe to decide by:

- it answers only once it has read the log to its end as of start-up (``caught_up``), and not while
  its reader is failing (the error is in the 503 and on ``follower.error``);
- a write through it is visible to the next read (``written`` waits until the reader has passed the
  acknowledged offset), and no read is answered before the view has passed this process's last
  write: a decision is never checked against a state older than the last one this process wrote.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, Self

from sharebus_core.control_log import ControlEventRejected
from sharebus_core.grant_log import GrantFollower, GrantLogError
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import Written
from sharebus_core.signing import Verifier


class GrantViewUnavailable(GrantLogError):
    """The view cannot answer now (starting, its reader failing, or behind a write): a 503, never a stale answer."""


class GrantListener(Protocol):
    """Another view fed by the same reader (the portal's pages): told of each grant after this view holds it."""

    def put(self, grant: Grant) -> None: ...
    def close(self, grant_id: str) -> None: ...


class FollowedGrants:
    def __init__(
        self,
        access: KafkaAccess,
        topic: str,
        verifier: Verifier,
        on_rejected: Callable[[ControlEventRejected], None],
        wait_s: float = 5.0,
        listener: GrantListener | None = None,
    ) -> None:
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        # Every event each grant's history took, in log order (at most one per workflow step): a writer
        # asks whether its own event was taken, which the latest state cannot tell once a later step
        # (another process's revocation) overwrote it.
        self._taken: dict[str, list[Grant]] = {}
        # Per partition, the offset of this process's latest write (reads wait until the view passed it).
        self._written: dict[int, int] = {}
        # One reader for both views: a second one would verify every event of the log twice.
        self._listener = listener
        self.follower = GrantFollower(access, topic, self._put, verifier, on_rejected, self._close)

    def start(self) -> Self:
        self.follower.start()
        return self

    def stop(self) -> None:
        self.follower.stop()

    def _put(self, grant: Grant) -> None:
        with self._lock:
            self._grants[grant.grant_id] = grant
            taken = self._taken.setdefault(grant.grant_id, [])
            if grant not in taken:
                taken.append(grant)
        if self._listener is not None:
            self._listener.put(grant)

    def _close(self, grant_id: str) -> None:
        with self._lock:
            self._grants.pop(grant_id, None)
        if self._listener is not None:
            self._listener.close(grant_id)

    def grants(self) -> dict[str, Grant]:
        """Every grant's latest verified state (a copy), with the parties the log recorded.

        Raises ``GrantViewUnavailable`` while the view is not caught up, or has not yet read this
        process's last write within ``wait_s``.
        """
        if not self.follower.caught_up.is_set():
            why = f" (its reader failed: {self.follower.error})" if self.follower.error else " (starting)"
            raise GrantViewUnavailable(f"the grants view has not read the grants log to its end yet{why}")
        with self._lock:
            pending = [Written(p, o) for p, o in self._written.items()]
        for at in pending:
            self._wait(at, "the grants view is behind this service's last write")
        with self._lock:
            return dict(self._grants)

    def get(self, grant_id: str) -> Grant | None:
        """The grant's state as the view holds it now (no wait: for a writer that has just waited)."""
        with self._lock:
            return self._grants.get(grant_id)

    def took(self, grant: Grant) -> bool:
        """Whether the view's history took this very event, whatever later events made of the grant since."""
        with self._lock:
            return grant in self._taken.get(grant.grant_id, ())

    def written(self, at: Written) -> None:
        """Waits until the view has read the write acknowledged ``at``; ``GrantViewUnavailable`` after ``wait_s``."""
        with self._lock:
            self._written[at.partition] = max(at.offset, self._written.get(at.partition, -1))
        self._wait(at, f"this service has not read it back (offset {at.offset})", "read the grant again shortly")

    def _wait(self, at: Written, what: str, then: str = "ask again shortly") -> None:
        if not self.follower.wait_past(at, self.wait_s):
            why = f"; its reader failed: {self.follower.error}" if self.follower.error else ""
            raise GrantViewUnavailable(f"{what} within {self.wait_s:g} s{why}; {then}")
