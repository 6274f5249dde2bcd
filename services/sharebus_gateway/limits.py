"""What one API key may use: a request rate (token bucket) and a number of open feeds.

Both are per key, so one noisy or compromised key cannot starve the others (on /open/v1 also per client
address, an IPv6 one by its /64: ``sharebus_core.client_address.client_bucket``). ``OpenFeeds`` also ends a
key's open feeds when the key is revoked: the key follower calls ``end_key`` from its thread, and each
feed, which checks its ticket between events, says why and closes within about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

# Re-exported: the gateway (open_api) counts callers here by the same buckets as the portal.
from sharebus_core.client_address import client_bucket as client_bucket
from sharebus_core.errors import SharebusError


class TokenBuckets:
    """A token bucket per key: ``burst`` requests at once, then ``rate_per_s`` on average. Thread-safe."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens, when counted), least recently used first: past max_keys the oldest is forgotten,
        # which costs that caller at most a fresh burst, in constant time under the lock.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Takes one token: 0.0 when the request may go, else the seconds until a token is free."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate_per_s)
            if tokens >= 1.0:
                self._remember(key, tokens - 1.0, now)
                return 0.0
            self._remember(key, tokens, now)
            return (1.0 - tokens) / self.rate_per_s

    def _remember(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)


class TooManyFeeds(SharebusError):
    """Opening one more feed would exceed a cap; ``per_key`` says which one."""

    def __init__(self, message: str, per_key: bool) -> None:
        super().__init__(message)
        self.per_key = per_key


@dataclass(eq=False)
class FeedTicket:
    """One open feed. ``ended`` is set (on the feed's loop) when its key is revoked."""

    key_id: str
    loop: asyncio.AbstractEventLoop
    address: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class OpenFeeds:
    """Open feeds per key and in all, with caps; ends a revoked key's feeds. Thread-safe."""

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total = total
        self._feeds: dict[str, set[FeedTicket]] = {}
        self._by_address: dict[str, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    def open(self, key_id: str, address: str | None = None) -> FeedTicket:
        """Registers a feed of ``key_id`` (from ``address``, counted by the same cap when given: many keys
        from one address are no more feeds); call on the event loop that serves it. Raises ``TooManyFeeds``."""
        ticket = FeedTicket(key_id, asyncio.get_running_loop(), address)
        with self._lock:
            if self._count >= self.total:
                raise TooManyFeeds("too many feed connections on this gateway; retry later", per_key=False)
            held = self._feeds.get(key_id, set())
            if len(held) >= self.per_key:
                raise TooManyFeeds(
                    f"this API key already has {len(held)} open feeds, the most it may have; close one first",
                    per_key=True,
                )
            if address is not None and self._by_address.get(address, 0) >= self.per_key:
                raise TooManyFeeds(
                    f"your address already has {self.per_key} open feeds, the most it may have; close one first",
                    per_key=True,
                )
            self._feeds[key_id] = held | {ticket}
            if address is not None:
                self._by_address[address] = self._by_address.get(address, 0) + 1
            self._count += 1
        return ticket

    def close(self, ticket: FeedTicket) -> None:
        with self._lock:
            held = self._feeds.get(ticket.key_id)
            if held is None or ticket not in held:
                return
            held.discard(ticket)
            self._count -= 1
            if not held:
                del self._feeds[ticket.key_id]
            if ticket.address is not None:
                left = self._by_address.pop(ticket.address, 1) - 1
                if left > 0:
                    self._by_address[ticket.address] = left

    def end_key(self, key_id: str) -> int:
        """Signals every open feed of ``key_id`` to end; callable from any thread. Returns how many."""
        with self._lock:
            tickets = list(self._feeds.get(key_id, ()))
        for ticket in tickets:
            # A closed loop means the feed is gone already.
            with contextlib.suppress(RuntimeError):
                ticket.loop.call_soon_threadsafe(ticket.ended.set)
        return len(tickets)

    def count(self, key_id: str | None = None) -> int:
        with self._lock:
            return self._count if key_id is None else len(self._feeds.get(key_id, ()))


__all__ = ["FeedTicket", "OpenFeeds", "TokenBuckets", "TooManyFeeds", "client_bucket"]
