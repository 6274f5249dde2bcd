"""Per-system API keys. Only a SHA-256 hash of each token is stored, on a compacted topic that every
gateway follows, so issuing and revoking take effect without a restart. Every entry is signed by the
control plane, and only a verified entry is a key (``sharebus_core.control_log``).

A token is ``sbk_<key id>_<secret>``: the key id finds the stored entry without scanning, and the
secret is 32 random bytes. An unsalted hash is enough: the secret is random, not a password.

Two kinds of key share the log: a system's key (the /v1 API, as that system) and a free open-data key
(only /open/v1, for conditionally open classes), issued on an application that records who and why.
Each is accepted only where its kind is asked for (``KeyView.authenticate``).

A key only moves forward, issued -> revoked, and a revoked key stays revoked (``KeyHistory``): a
signed "issued" copied back onto the log within the replay window is refused as ``stale``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka import Message
from pydantic import BaseModel, ConfigDict, SecretStr

from sharebus_core.catalogue import Catalogue, UnknownSystem
from sharebus_core.compacted_log import LogFollower
from sharebus_core.control_log import (
    ControlEventRejected,
    append_signed,
    closed_by,
    open_event,
    read_verified,
    rejected_event,
)
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import ControlKeys, Rejected, RejectReason, Verifier
from sharebus_core.topic_reader import TopicMissing, TopicReadError
from sharebus_core.topics import PUBLIC_CONSUMER

TOKEN_PREFIX = "sbk"  # noqa: S105 - a public marker of the token format, not a secret
# How long one read of the key log may wait for the broker (per poll); looked up at each read.
READ_TIMEOUT_S = 30.0


class KeyKind(StrEnum):
    SYSTEM = "system"
    OPEN_DATA = "open_data"


class ApiKey(BaseModel):
    """One key as stored: never the token itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    key_hash: str
    # An open-data key's system and department are the public's (PUBLIC_CONSUMER), never a department's.
    system: str
    department: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    kind: KeyKind = KeyKind.SYSTEM
    # The application an open-data key was issued on: who applied, for what use, and how to reach them.
    holder: str | None = None
    purpose: str | None = None
    contact: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: SecretStr


class KeyNotFound(SharebusError, LookupError):
    """A key that cannot be found, or that belongs to another system."""


class KeysUnavailable(SharebusError, RuntimeError):
    """The key log could not be read to its end (a timeout, a refusal): the keys are unknown, not absent."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id part of a well-formed token, or None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def new_key(system: str, department: str, now: dt.datetime) -> IssuedKey:
    key_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(key_id=key_id, key_hash=hash_token(token), system=system, department=department, created_at=now)
    return IssuedKey(key, SecretStr(token))


def new_open_data_key(holder: str, purpose: str, contact: str | None, now: dt.datetime) -> IssuedKey:
    """A free open-data key for whoever applied: it reads conditionally open classes on /open/v1, nothing else."""
    issued = new_key(PUBLIC_CONSUMER, PUBLIC_CONSUMER, now)
    key = issued.key.model_copy(
        update={"kind": KeyKind.OPEN_DATA, "holder": holder, "purpose": purpose, "contact": contact}
    )
    return IssuedKey(key, issued.token)


def matches(key: ApiKey, token: str) -> bool:
    # Constant-time: the comparison must not tell an attacker how much of a guessed hash was right.
    return hmac.compare_digest(key.key_hash, hash_token(token))


def decode_key(payload: bytes, record_key: str | None) -> ApiKey:
    """A verified payload as a key entry; ``ValueError`` if it is not one, or not the entry of its record key."""
    entry = ApiKey.model_validate_json(payload)
    if entry.key_id != record_key:
        raise ValueError(f"key {entry.key_id!r} written under record key {record_key!r}")
    return entry


def open_key(verifier: Verifier, msg: Message) -> ApiKey | ControlEventRejected:
    """Only an entry the control plane signed is a key: a written record alone never authenticates."""
    return open_event(verifier, msg, decode_key, subject_field="system")


class KeyHistory:
    """What one reader has taken of each key, so that only a step forward (issued -> revoked) changes it.

    The signature and the broker's append time refuse a forgery and an old replay, but a signed
    entry copied back onto the log within ``SHAREBUS_CONTROL_MAX_DELAY_S`` still verifies: an
    "issued" replayed after the real "revoked" would make the key valid again. So after the first
    entry of a key a reader takes, a later one must revoke that same key, or be the same entry again
    (a no-op); anything else is refused as ``stale``. A revoked key is never issued again (a key id
    is random and used once), and a second revocation written at once leaves the first one standing.

    A signed entry nobody can read closes its key (``closed``, ``control_log.closed_by``): it may have
    been the revocation. Only a revocation of that key is taken after it.
    """

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self._latest: dict[str, ApiKey] = {}
        self.closed: set[str] = set()

    def open(self, msg: Message) -> ApiKey | ControlEventRejected:
        opened = open_key(self.verifier, msg)
        if isinstance(opened, ControlEventRejected):
            closed = closed_by(opened)
            if closed is not None:
                self.closed.add(closed)
            return opened
        before = self._latest.get(opened.key_id)
        if opened.key_id in self.closed and opened.active:
            detail = f"key {opened.key_id} was closed by a signed entry nobody can read: only its revocation is taken"
            return rejected_event(msg, Rejected(RejectReason.STALE, detail), subject_field="system")
        if before is not None and not _follows(before, opened):
            detail = (
                f"key {opened.key_id} is {_state(before)} and this entry makes it {_state(opened)}"
                f"{'' if _same_key(before, opened) else ' with other contents'}: "
                "not a step forward (a replayed or conflicting entry)"
            )
            return rejected_event(msg, Rejected(RejectReason.STALE, detail), subject_field="system")
        self._latest[opened.key_id] = opened
        return opened


def _state(key: ApiKey) -> str:
    return "active" if key.active else "revoked"


def _same_key(before: ApiKey, after: ApiKey) -> bool:
    """The same key but for its revocation time."""
    return before.model_copy(update={"revoked_at": None}) == after.model_copy(update={"revoked_at": None})


def _follows(before: ApiKey, after: ApiKey) -> bool:
    if after == before:
        return True  # the same entry again changes nothing
    return before.active and not after.active and _same_key(before, after)


class KeyStore:
    """Issues, lists and revokes keys on the log (the CLI); reads are from the log each time."""

    def __init__(self, catalogue: Catalogue, access: KafkaAccess, topic: str, *, control: ControlKeys) -> None:
        self.catalogue = catalogue
        self.access = access
        self.topic = topic
        self.control = control

    def _all(self) -> dict[str, ApiKey]:
        # Fail closed: only a missing topic means "no keys". A read that timed out or was refused is an
        # error, or `revoke` would revoke nothing and report success.
        # Only a step forward changes a key (``KeyHistory``), as in the gateway's view.
        history = KeyHistory(self.control.verifier)
        try:
            verified = read_verified(self.access, self.topic, history.open, timeout_s=READ_TIMEOUT_S)
        except TopicMissing:
            return {}
        except TopicReadError as exc:
            raise KeysUnavailable(f"cannot read the API keys on {self.topic}: {exc}") from exc
        # A key closed by an entry nobody can read is no longer usable: it is left out, as if revoked.
        return {key.key_id: key for key in verified if not (key.key_id in history.closed and key.active)}

    def _append(self, key: ApiKey) -> None:
        append_signed(self.access, self.topic, key.key_id, key.model_dump_json().encode(), self.control.signing())

    def issue(self, system: str) -> IssuedKey:
        department = self.catalogue.department_of_system.get(system)
        if department is None:
            raise UnknownSystem(system)
        issued = new_key(system, department, dt.datetime.now(dt.UTC))
        self._append(issued.key)
        return issued

    def issue_open_data(self, holder: str, purpose: str, contact: str | None = None) -> IssuedKey:
        """Issues an open-data key on an application; the application is kept with the key, in the log."""
        issued = new_open_data_key(holder, purpose, contact, dt.datetime.now(dt.UTC))
        self._append(issued.key)
        return issued

    def keys_of(self, system: str) -> list[ApiKey]:
        return sorted((k for k in self._all().values() if k.system == system), key=lambda k: k.created_at)

    def revoke(self, system: str, key_id: str | None = None) -> list[ApiKey]:
        """Revokes one key of ``system`` (or all its active keys); returns the keys revoked."""
        keys = [k for k in self.keys_of(system) if k.active and (key_id is None or k.key_id == key_id)]
        if key_id is not None and not keys:
            raise KeyNotFound(f"no active key {key_id!r} of system {system}")
        now = dt.datetime.now(dt.UTC)
        revoked = [k.model_copy(update={"revoked_at": now}) for k in keys]
        for key in revoked:
            self._append(key)
        return revoked


class KeyView:
    """The gateway's live view of the keys, kept by following the log.

    Only a step forward changes a key (``KeyHistory``): an entry that would bring a revoked key back
    (a replay) goes to ``on_rejected`` as ``stale``.
    """

    def __init__(
        self,
        access: KafkaAccess,
        topic: str,
        verifier: Verifier,
        on_rejected: Callable[[ControlEventRejected], None],
        on_revoked: Callable[[str], object] | None = None,
    ) -> None:
        """``on_revoked(key_id)`` is called (from the follower's thread) when a verified record revokes a key."""
        self._keys: dict[str, ApiKey] = {}
        self._lock = threading.Lock()
        self._history = KeyHistory(verifier)
        self._on_rejected = on_rejected
        self._on_revoked = on_revoked
        self.follower = LogFollower(access, topic, self._on_record, name="apikey-follower")

    def _on_record(self, msg: Message) -> None:
        # An unverifiable record (a forged key, a forged revocation, a tombstone) changes nothing, and
        # neither does a verified one that is not a step forward (a replayed "issued" after "revoked").
        entry = self._history.open(msg)
        if isinstance(entry, ControlEventRejected):
            closed = closed_by(entry)
            if closed is not None:
                # Signed, but unreadable: it may have revoked the key, so the key stops working (fail closed).
                with self._lock:
                    self._keys.pop(closed, None)
                if self._on_revoked is not None:
                    self._on_revoked(closed)
            self._on_rejected(entry)
            return
        with self._lock:
            self._keys[entry.key_id] = entry
        if not entry.active and self._on_revoked is not None:
            self._on_revoked(entry.key_id)

    def active(self, key_id: str) -> bool:
        with self._lock:
            key = self._keys.get(key_id)
        return key is not None and key.active

    def count_active(self, kind: KeyKind) -> int:
        with self._lock:
            return sum(1 for key in self._keys.values() if key.active and key.kind is kind)

    def authenticate(self, token: str, kind: KeyKind) -> ApiKey | None:
        """The active key of ``kind`` the token belongs to, or None: an open-data key is no system's key."""
        key_id = key_id_of(token)
        if key_id is None:
            return None
        with self._lock:
            key = self._keys.get(key_id)
        if key is None or not key.active or key.kind is not kind or not matches(key, token):
            return None
        return key
