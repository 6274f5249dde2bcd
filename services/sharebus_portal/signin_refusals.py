"""Which refused sign-ins become audit facts: a bounded number, however many are sent.

A sign-in refused before its password is checked (posted from another site, or from a locked-out name or
address) costs its sender nothing, and the audit trail is kept forever, every fact chained by the
auditor: one fact per refusal would let anyone, unauthenticated, grow both without limit. So per refusal
reason and client bucket (an IPv4 address, an IPv6 /64) only the first refusal of a window is audited
on its own; the rest are counted (``sharebus_portal_signin_refusals_total``, every refusal) and, once the
window has passed, said in one fact with their number (``repeats``). That is at most two facts per
reason and bucket per window, at any rate (past ``MAX_OPEN_WINDOWS`` buckets, two for all the others
together), and no refusal goes unsaid in the trail. The per-reason and
per-bucket granularity keeps what an auditor needs: who was refused, from where, why, and how often.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

# Windows open at once, at most: past it a refusal from one more bucket counts in its reason's window
# for all buckets (``MANY``), so a flood from ever new buckets (an IPv6 /48 holds 65536 /64s) is still a
# bounded number of facts a window, and the tally a bounded size.
MAX_OPEN_WINDOWS = 1_000
MANY = "*"


@dataclass(frozen=True)
class Repeats:
    """Refusals of one reason from one client bucket, in a window that has passed, not audited one by one."""

    reason: str
    client: str  # a client bucket, or ``MANY``: any beyond the ``MAX_OPEN_WINDOWS`` already counted
    username: str  # the name the window's first (audited) refusal was for
    count: int
    window_s: float


@dataclass
class _Window:
    started: float
    username: str
    repeats: int = 0


class RefusalTally:
    """Counts refused sign-ins per (reason, client bucket) and window; says which to audit. Thread-safe."""

    def __init__(
        self,
        window_s: float,
        registry: CollectorRegistry,
        now: Callable[[], float] = time.monotonic,
        max_open: int = MAX_OPEN_WINDOWS,
    ) -> None:
        self.window_s = window_s
        self._now = now
        self._max_open = max_open
        # Oldest first: a window is only ever added at the end, so the passed ones are at the front.
        self._open: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._due: list[Repeats] = []
        self._lock = threading.Lock()
        self.refused_total = Counter(
            "sharebus_portal_signin_refusals",
            "Sign-ins refused before their password was checked, by reason; audited or not",
            ["reason"],
            registry=registry,
        )

    def refused(self, reason: str, client: str, username: str) -> bool:
        """Counts one refusal; True when it is its window's first, to be audited now."""
        self.refused_total.labels(reason).inc()
        now = self._now()
        with self._lock:
            self._close_passed(now)
            key = (reason, client)
            if key not in self._open and len(self._open) >= self._max_open:
                key = (reason, MANY)
            window = self._open.get(key)
            if window is not None:
                window.repeats += 1
                return False
            self._open[key] = _Window(now, username)
            return True

    def passed(self) -> list[Repeats]:
        """The repeats of every window passed since last asked (each said once), to be audited."""
        with self._lock:
            self._close_passed(self._now())
            due, self._due = self._due, []
        return due

    def _close_passed(self, now: float) -> None:
        while self._open:
            key, window = next(iter(self._open.items()))
            if now - window.started < self.window_s:
                return
            del self._open[key]
            self._close(key, window)

    def _close(self, key: tuple[str, str], window: _Window) -> None:
        if window.repeats:
            self._due.append(Repeats(key[0], key[1], window.username, window.repeats, self.window_s))
