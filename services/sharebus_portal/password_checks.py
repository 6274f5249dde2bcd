"""How many passwords the portal checks at once: a bounded number, however many sign-ins are sent.

A password check is argon2id, slow and memory-hard on purpose (tens of MiB and most of a second per
check). Each one ran in the request thread pool with no bound of its own: sign-ins sent together from
many addresses, each under its own failure limit, could take every worker thread and gigabytes of memory,
and keep every other page waiting. So at most ``concurrent`` checks run at once and ``waiting`` more
queue for a turn; a sign-in beyond those is refused at once (``PortalBusy``), its password unchecked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from sharebus_core.errors import SharebusError
from sharebus_portal.accounts import Account


class PortalBusy(SharebusError):
    """Too many sign-ins are being checked now; this one was refused without checking its password."""


class PasswordChecks:
    def __init__(self, concurrent: int, waiting: int) -> None:
        self.concurrent = concurrent
        self.limit = concurrent + waiting
        self._turns = asyncio.Semaphore(concurrent)
        # Checks running or queued. Counted on the event loop's thread only, so no lock.
        self.admitted = 0

    async def verify(self, check: Callable[[str, str], Account | None], username: str, password: str) -> Account | None:
        """``check(username, password)`` in a worker thread when a turn is free; ``PortalBusy`` when none will be."""
        if self.admitted >= self.limit:
            raise PortalBusy(f"{self.admitted} sign-ins are being checked now (at most {self.limit})")
        self.admitted += 1
        try:
            async with self._turns:
                return await run_in_threadpool(check, username, password)
        finally:
            self.admitted -= 1
