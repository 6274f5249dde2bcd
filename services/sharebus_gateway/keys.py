"""Per-system API keys. Only a SHA-256 hash of each token is stored, on a compacted topic that every
gateway follows, so issuing and revoking take effect without a restart.

A token is ``sbk_<key id>_<secret>``: the key id finds the stored entry without scanning, and the
secret is 32 random bytes. An unsalted hash is enough: the secret is random, not a password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from sharebus_core.catalogue import Catalogue, UnknownSystem
from sharebus_core.compacted_log import LogFollower, append
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import TopicReadError, read_topic

TOKEN_PREFIX = "sbk"  # noqa: S105 - a public marker of the token format, not a secret


class ApiKey(BaseModel):
    """One key as stored: never the token itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    key_hash: str
    system: str
    department: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: SecretStr


class KeyNotFound(LookupError):
    """A key that cannot be found, or that belongs to another system."""


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


def matches(key: ApiKey, token: str) -> bool:
    # Constant-time: the comparison must not tell an attacker how much of a guessed hash was right.
    return hmac.compare_digest(key.key_hash, hash_token(token))


def _decode(value: bytes | None) -> ApiKey | None:
    if value is None:
        return None
    try:
        return ApiKey.model_validate_json(value)
    except ValidationError:
        return None


class KeyStore:
    """Issues, lists and revokes keys on the log (the CLI); reads are from the log each time."""

    def __init__(self, catalogue: Catalogue, access: KafkaAccess, topic: str) -> None:
        self.catalogue = catalogue
        self.access = access
        self.topic = topic

    def _all(self) -> dict[str, ApiKey]:
        keys: dict[str, ApiKey] = {}
        try:
            messages = read_topic(self.access, self.topic)
        except TopicReadError:
            return keys
        for msg in messages:
            key = _decode(msg.value())
            if key is not None:
                keys[key.key_id] = key
        return keys

    def issue(self, system: str) -> IssuedKey:
        department = self.catalogue.department_of_system.get(system)
        if department is None:
            raise UnknownSystem(system)
        issued = new_key(system, department, dt.datetime.now(dt.UTC))
        append(self.access, self.topic, issued.key.key_id, issued.key.model_dump_json().encode())
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
            append(self.access, self.topic, key.key_id, key.model_dump_json().encode())
        return revoked


class KeyView:
    """The gateway's live view of the keys, kept by following the log."""

    def __init__(self, access: KafkaAccess, topic: str) -> None:
        self._keys: dict[str, ApiKey] = {}
        self._lock = threading.Lock()
        self.follower = LogFollower(access, topic, self._on_record, name="apikey-follower")

    def _on_record(self, key: bytes | None, value: bytes | None) -> None:
        entry = _decode(value)
        with self._lock:
            if entry is not None:
                self._keys[entry.key_id] = entry
            elif key is not None:
                self._keys.pop(key.decode("utf-8", "replace"), None)

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key the token belongs to, or None."""
        key_id = key_id_of(token)
        if key_id is None:
            return None
        with self._lock:
            key = self._keys.get(key_id)
        if key is None or not key.active or not matches(key, token):
            return None
        return key
