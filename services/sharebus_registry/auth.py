"""Who may call the registry: HTTP Basic credentials checked by an injected verifier, and a policy.

- Authentication: the credential is the caller's Kafka SCRAM credential. A ``Verifier`` (in production
  ``kafka_auth.KafkaCredentialVerifier``, which asks the broker) says whether it is good. Successes are
  cached for a short TTL, keyed by a keyed hash of user and password (the password is never kept), so
  a revoked or rotated credential stops working within the TTL. Failures are never cached; instead
  each user's verifications are serialised and a failure holds that user's gate for a delay, so
  guessing one user's password runs at no more than one try per delay, whatever the concurrency; past
  ``max_pending_per_user`` waiting tries, more are refused (``TooManyAttempts``) without asking.
- That gate is anyone's to fill: no credential is needed to send wrong passwords for a name. So a
  credential this process has seen succeed is remembered (its keyed hash, past the TTL, until the
  broker refuses it or the table is full) and, once its cache entry expires, is checked with the
  broker again *beside* the gate: the bus's own services and the systems, whose credentials were good
  a moment ago, are never refused for someone else's guesses. That lane gives a guesser nothing: only
  a credential that was right gets into it, one check at a time (``_inflight``), within the global
  bound on concurrent checks. A credential never seen good here (the first use after a start or a
  rotation) cannot be told from a guess and still queues in the gate. The alternative, bounding the
  gate per (user, client address), needs the request's address, which the HTTP layer does not pass.
- Authorisation: only the writer principals (the bus's own services and the admin) may register,
  delete, and change compatibility or mode. Writers see every subject; any other principal sees only
  the subjects its name entitles it to (``SubjectScope``): a subject names a grant's consumer and
  class, and a projection's fields, which the gateway hides from everyone but the parties.

Nothing here knows Kafka or HTTP: the verifier and the request's method and route are passed in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

from sharebus_core.errors import SharebusError
from sharebus_core.principals import SERVICES

Verifier = Callable[[str, str], bool]
"""Blocking: True when the broker takes ``(username, password)``, False when it refuses it.
Raises ``VerifierUnavailable`` when it cannot tell (the broker is unreachable)."""


class VerifierUnavailable(SharebusError, RuntimeError):
    """The credential could not be checked now; the caller should retry later."""


class TooManyAttempts(SharebusError, RuntimeError):
    """Too many verifications of one user are waiting; refused without trying."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many authentication attempts for this user")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str = field(repr=False)


def parse_basic(header: str | None) -> BasicCredentials | None:
    """The credentials of an ``Authorization: Basic ...`` header, or None when absent or malformed."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    if not colon or not username or not password:
        return None
    return BasicCredentials(username, password)


@dataclass(slots=True)
class _Gate:
    """One user's verifications, one at a time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: int = 0


class Authenticator:
    """Checks credentials with ``verify``; see the module docstring for the cache and the failure delay."""

    def __init__(
        self,
        verify: Verifier,
        *,
        ttl_s: float = 30.0,
        failure_delay_s: float = 1.0,
        max_pending_per_user: int = 8,
        max_concurrent: int = 4,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verify = verify
        self._ttl_s = ttl_s
        self._failure_delay_s = failure_delay_s
        self._max_pending = max_pending_per_user
        self._max_cached = max_cached
        self._clock = clock
        # A per-process key: the cache holds HMACs that are useless outside this process.
        self._hash_key = secrets.token_bytes(32)
        self._cache: dict[bytes, float] = {}
        # Credentials verified good at least once, in insertion order (the oldest is evicted first).
        self._known: dict[bytes, None] = {}
        self._gates: dict[str, _Gate] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        # A credential being verified: more requests with the very same credential wait for that
        # answer instead of queueing verifications of their own (a client's burst after the cache
        # entry expired is one verification, not a refusal for "too many attempts").
        self._inflight: dict[bytes, asyncio.Future[bool]] = {}

    def _key(self, username: str, password: str) -> bytes:
        message = username.encode() + b"\x00" + password.encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).digest()

    def _cached(self, key: bytes) -> bool:
        expires = self._cache.get(key)
        if expires is None:
            return False
        if expires <= self._clock():
            del self._cache[key]
            return False
        return True

    def _remember(self, key: bytes) -> None:
        now = self._clock()
        if len(self._cache) >= self._max_cached:
            self._cache = {k: exp for k, exp in self._cache.items() if exp > now}
            while len(self._cache) >= self._max_cached:
                del self._cache[next(iter(self._cache))]  # the oldest insertion
        self._cache[key] = now + self._ttl_s
        self._known.pop(key, None)
        if len(self._known) >= self._max_cached:
            del self._known[next(iter(self._known))]
        self._known[key] = None

    async def authenticate(self, credentials: BasicCredentials) -> bool:
        """True when the credential is good. Raises ``TooManyAttempts`` or ``VerifierUnavailable``."""
        key = self._key(credentials.username, credentials.password)
        if self._cached(key):
            return True
        inflight = self._inflight.get(key)
        if inflight is not None:
            try:
                return await asyncio.shield(inflight)
            except asyncio.CancelledError:
                if not inflight.cancelled():
                    raise  # this request itself was cancelled
                # The request that was verifying went away: verify here instead.
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = answer
        try:
            good = await self._verified(key, credentials)
        except (TooManyAttempts, VerifierUnavailable) as exc:
            self._inflight.pop(key, None)
            answer.set_exception(exc)
            answer.exception()  # retrieved here, so a future nobody else awaited is not reported
            raise
        except BaseException:
            self._inflight.pop(key, None)
            answer.cancel()
            raise
        answer.set_result(good)
        self._inflight.pop(key, None)
        return good

    async def _verified(self, key: bytes, credentials: BasicCredentials) -> bool:
        if key in self._known:
            return await self._rechecked(key, credentials)
        gate = self._gates.setdefault(credentials.username, _Gate())
        if gate.pending >= self._max_pending:
            raise TooManyAttempts(self._failure_delay_s * self._max_pending)
        gate.pending += 1
        try:
            async with gate.lock:
                # Another request may have verified the same credential while this one waited.
                if self._cached(key):
                    return True
                async with self._slots:
                    good = await asyncio.to_thread(self._verify, credentials.username, credentials.password)
                if good:
                    self._remember(key)
                    return True
                # Still holding the user's gate: the next try for this user waits out the delay too.
                await asyncio.sleep(self._failure_delay_s)
                return False
        finally:
            gate.pending -= 1
            if gate.pending == 0:
                self._gates.pop(credentials.username, None)

    async def _rechecked(self, key: bytes, credentials: BasicCredentials) -> bool:
        """A credential good before, checked again outside its user's gate (module docstring)."""
        async with self._slots:
            good = await asyncio.to_thread(self._verify, credentials.username, credentials.password)
        if good:
            self._remember(key)
        else:
            # Revoked or rotated: from now on it is a guess like any other, and waits in the gate.
            self._known.pop(key, None)
        return good


OperationName = Literal["Read", "Write", "Delete", "AlterCompatibility", "AlterMode"]


@dataclass(frozen=True, slots=True)
class Operation:
    name: OperationName
    resource: str

    @property
    def writes(self) -> bool:
        return self.name != "Read"


_READ_POSTS = frozenset({"/subjects/{subject}"})  # lookup: "is this schema registered?"


def operation_of(method: str, route: str | None, subject: str | None) -> Operation:
    """What a request does. ``route`` is the matched route's template (None when nothing matched).

    Deny by default: any method but GET/HEAD that is not a known read counts as a write.
    """
    resource = f"Subject: {subject}" if subject is not None else "the registry"
    method = method.upper()
    if method in ("GET", "HEAD"):
        return Operation("Read", resource)
    if method == "POST" and route is not None and (route in _READ_POSTS or route.startswith("/compatibility/")):
        return Operation("Read", resource)
    if route is not None and route.startswith("/config"):
        return Operation("AlterCompatibility", resource if subject is not None else "the global configuration")
    if route is not None and route.startswith("/mode"):
        return Operation("AlterMode", resource)
    if method == "DELETE":
        return Operation("Delete", resource)
    return Operation("Write", resource)


# The shapes of BusSettings.namespace and of a catalogue SystemCode: neither holds a dot, so the first
# dot of ``<ns>.<system>`` splits it, and ``<ns>.dlv.<system>.`` is no other system's prefix.
_NAMESPACE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}")
_SYSTEM = re.compile(r"[a-z][a-z0-9-]{1,40}")


@dataclass(frozen=True, slots=True)
class SubjectScope:
    """The subjects one principal may see: all of them, or those with one of ``rules``' (prefix, suffix)."""

    everything: bool = False
    rules: tuple[tuple[str, str], ...] = ()

    def __call__(self, subject: str) -> bool:
        return self.everything or any(subject.startswith(p) and subject.endswith(s) for p, s in self.rules)


EVERY_SUBJECT = SubjectScope(everything=True)
NO_SUBJECT = SubjectScope()


def _service_namespace(username: str) -> str | None:
    """``<ns>`` of a bus service's principal ``<ns>-<service>``, or None when it is not one."""
    for service in SERVICES:
        namespace = username.removesuffix(f"-{service}")
        if namespace != username and _NAMESPACE.fullmatch(namespace):
            return namespace
    return None


def scope_of_reader(username: str) -> SubjectScope:
    """What a principal that is no writer may see, from its name alone (sharebus_core.principals).

    A system ``<ns>.<system>`` sees its own delivery subjects ``<ns>.dlv.<system>.*`` (what it
    receives, in its grants' fields: the SDK's land reads them) and the class subjects
    ``<ns>.src.*-value`` (the catalogue's schemas, public to every department: the SDK's Publisher
    looks its class up there). A bus service ``<ns>-<service>`` sees its namespace's subjects: the
    gateway and the portal read every delivery topic, and the facts the monitor and auditor read
    name every delivery's consumer and class already. Anyone else sees none. Schemas by id stay
    readable to all (they name no subject): a deserializer fetches the writer schema of a record so.
    """
    namespace, dot, system = username.partition(".")
    if dot:
        if not (_NAMESPACE.fullmatch(namespace) and _SYSTEM.fullmatch(system)):
            return NO_SUBJECT
        return SubjectScope(rules=((f"{namespace}.src.", "-value"), (f"{namespace}.dlv.{system}.", "")))
    service_namespace = _service_namespace(username)
    return SubjectScope(rules=((f"{service_namespace}.", ""),)) if service_namespace else NO_SUBJECT


@dataclass(frozen=True, slots=True)
class RegistryPolicy:
    """Writers are exact principals or ``fnmatch`` patterns (a registry shared by many test namespaces)."""

    writers: frozenset[str]

    @classmethod
    def of(cls, writers: Iterable[str]) -> RegistryPolicy:
        return cls(frozenset(writers))

    def is_writer(self, username: str) -> bool:
        return any(fnmatchcase(username, pattern) for pattern in self.writers)

    def allows(self, username: str, operation: Operation) -> bool:
        """Any authenticated principal reads (within ``subjects_of``); only writers change anything."""
        return not operation.writes or self.is_writer(username)

    def subjects_of(self, username: str) -> SubjectScope:
        """The subjects ``username`` may see: every one for a writer, else ``scope_of_reader``.

        The namespace comes from the name, not from the registry's settings: one registry serves many
        namespaces (``served_namespaces``, every test's), and each principal sees only its own."""
        return EVERY_SUBJECT if self.is_writer(username) else scope_of_reader(username)


__all__ = [
    "EVERY_SUBJECT",
    "NO_SUBJECT",
    "Authenticator",
    "BasicCredentials",
    "Operation",
    "RegistryPolicy",
    "SubjectScope",
    "TooManyAttempts",
    "Verifier",
    "VerifierUnavailable",
    "operation_of",
    "parse_basic",
    "scope_of_reader",
]
