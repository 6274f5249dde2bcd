"""Signed-in sessions and the sign-in rate limit. Kept in this process's memory only.

A session id is 256 random bits, sent only as a Secure, HttpOnly, SameSite=Strict cookie; the server
keeps a keyed hash of it, never the id itself. Each session carries its own CSRF token, which every
form posts back. Sessions end on sign-out, after ``idle_s`` without a request, ``ttl_s`` after sign-in,
or when the account is removed or given a new password.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from sharebus_core.client_address import client_bucket
from sharebus_portal.accounts import Account
from sharebus_portal.signin_refusals import RefusalTally

Now = Callable[[], float]


def credential_stamp(account: Account) -> str:
    """What a session remembers of the password it was signed in with: a digest of the account's hash.

    An account replaced with a new password (or removed and added again under its name) has another
    hash, so the sessions signed in before no longer match it and end (``Session.signed_in_as``).
    """
    return hashlib.sha256(account.password_hash.encode()).hexdigest()


@dataclass
class Session:
    username: str
    csrf_token: str
    started: float
    last_seen: float
    credential: str

    def signed_in_as(self, account: Account) -> bool:
        """Whether this session was signed in with ``account``'s name and current password."""
        same = hmac.compare_digest(self.credential.encode(), credential_stamp(account).encode())
        return self.username == account.username and same


@dataclass
class SessionStore:
    ttl_s: float
    idle_s: float
    now: Now = time.monotonic
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _digest(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    def start(self, account: Account) -> tuple[str, Session]:
        """A new session for the account: its id (for the cookie) and the session."""
        session_id = secrets.token_urlsafe(32)
        now = self.now()
        session = Session(account.username, secrets.token_urlsafe(32), now, now, credential_stamp(account))
        with self._lock:
            self._expire(now)
            self._sessions[self._digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self.now()
        with self._lock:
            digest = self._digest(session_id)
            session = self._sessions.get(digest)
            if session is None:
                return None
            if now - session.started > self.ttl_s or now - session.last_seen > self.idle_s:
                del self._sessions[digest]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(self._digest(session_id), None)

    def end_all_of(self, username: str) -> None:
        with self._lock:
            for digest in [d for d, s in self._sessions.items() if s.username == username]:
                del self._sessions[digest]

    def _expire(self, now: float) -> None:
        stale = [
            d for d, s in self._sessions.items() if now - s.started > self.ttl_s or now - s.last_seen > self.idle_s
        ]
        for digest in stale:
            del self._sessions[digest]


def csrf_ok(session: Session, sent: str | None) -> bool:
    # As bytes: compare_digest raises TypeError on a str that is not ASCII, which a client may well send.
    return sent is not None and hmac.compare_digest(session.csrf_token.encode(), sent.encode("utf-8", "replace"))


ACCOUNT = "account:"
CLIENT = "client:"


def signin_keys(username: str, address: str) -> tuple[str, str]:
    """What a sign-in is counted by: its account name, and its client address's bucket (an IPv6 one by its
    /64, as the gateway counts callers: one host rotating addresses through its /64 is one client)."""
    return f"{ACCOUNT}{username}", f"{CLIENT}{client_bucket(address)}"


@dataclass
class SignInLimiter:
    """At most ``max_failures`` failed sign-ins per key in ``window_s``; an account name's key
    (``signin_keys``) allows ``account_max_failures``, by default ten times as many.

    A locked-out key is refused before its password is even checked, so guessing runs no faster than
    ``max_failures`` per window from one client bucket and ``account_max_failures`` per window at one
    account from all of them. The account's limit is higher on purpose: were it a client's, anyone who
    knows an official's name could keep them locked out with ``max_failures`` wrong passwords a window;
    now that takes ``account_max_failures / max_failures`` client buckets (IPv4 addresses, IPv6 /64s) at
    once, while guessing at one account stays bounded. Refusals are tallied for the audit (``refusals``)."""

    max_failures: int
    window_s: float
    now: Now = time.monotonic
    account_max_failures: int | None = None
    # Where the refusals are counted (the portal's metrics); a registry of its own when not given.
    registry: CollectorRegistry | None = None
    refusals: RefusalTally = field(init=False)
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.account_max_failures is None:
            self.account_max_failures = 10 * self.max_failures
        self.refusals = RefusalTally(self.window_s, self.registry or CollectorRegistry(), self.now)

    def _limit(self, key: str) -> int:
        if key.startswith(ACCOUNT) and self.account_max_failures is not None:
            return self.account_max_failures
        return self.max_failures

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def _wait(self, keys: tuple[str, ...], now: float) -> float:
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self._limit(key):
                wait = max(wait, self.window_s - (now - times[0]))
        return wait

    def retry_after(self, *keys: str) -> float:
        """Seconds until these keys may try again; 0 when they may now."""
        now = self.now()
        with self._lock:
            return self._wait(keys, now)

    def begin(self, *keys: str) -> tuple[float, float]:
        """Starts one sign-in: (seconds to wait, 0 when it may go on; the attempt's time, for ``succeeded``).

        An attempt that goes on counts as a failure at once, in the same step as the check: checking a
        password takes a while, and sign-ins sent together would otherwise all pass the check before any
        failed, so guessing would have no limit at all."""
        now = self.now()
        with self._lock:
            wait = self._wait(keys, now)
            if wait == 0:
                for key in keys:
                    self._recent(key, now).append(now)
                self._forget(now)
        return wait, now

    def failed(self, *keys: str) -> None:
        now = self.now()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            self._forget(now)

    def _forget(self, now: float) -> None:
        # Bounded: keys without a recent failure are forgotten.
        if len(self._failures) > 10_000:
            for key in [k for k, t in self._failures.items() if not t or now - t[-1] > self.window_s]:
                del self._failures[key]

    def withdraw(self, at: float, *keys: str) -> None:
        """Takes back the attempt begun ``at``: it ended before its password was checked."""
        with self._lock:
            for key in keys:
                with contextlib.suppress(ValueError):
                    self._failures.get(key, deque()).remove(at)

    def succeeded(self, username_key: str, address_key: str, at: float) -> None:
        """The account name's failures are forgotten; of the client's, only this attempt (begun ``at``)."""
        with self._lock:
            self._failures.pop(username_key, None)
            with contextlib.suppress(ValueError):
                self._failures.get(address_key, deque()).remove(at)
