"""Ed25519 signatures for the control plane (grant and API-key events) and for the audit anchors. Pure: no Kafka.

A signed value is a JSON envelope: the payload (base64), the signer's key id, the signing time and the
signature. What is signed is not only the payload but also the topic and the record key it is written
under, so a signed event cannot be moved to another entry or another topic (or namespace); the
reader supplies topic and key from the record it read, never from the envelope.

Verification returns a typed outcome, ``Verified`` or ``Rejected`` with a reason, never a sentinel.

Key files are PEM: PKCS#8 for the private key (written 0600), SubjectPublicKeyInfo for the public
ones. A public key file may hold several keys (one per PEM block), so that a signing key can be
rotated: readers trust old and new until every event is signed with the new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sharebus_core.errors import SharebusError

ENVELOPE = "sharebus.signed.v1"
_PEM_PUBLIC = b"-----BEGIN PUBLIC KEY-----"


class SigningKeyError(SharebusError, RuntimeError):
    """A key file that is missing, unreadable or not an Ed25519 key; or no key configured."""


class RejectReason(StrEnum):
    UNSIGNED = "unsigned"  # no envelope at all (plain JSON, garbage, or a tombstone)
    MALFORMED = "malformed"  # an envelope with missing or undecodable fields
    UNKNOWN_KEY = "unknown_key"  # signed by a key this reader does not trust
    BAD_SIGNATURE = "bad_signature"  # the signature does not match payload, topic and key
    STALE = "stale"  # signed long before (or after) the broker appended it: a replay
    UNTIMED = "untimed"  # the record has no broker-set time, so a replay cannot be ruled out
    INVALID_PAYLOAD = "invalid_payload"  # correctly signed, but not what the topic holds (readers check)


@dataclass(frozen=True, slots=True)
class Verified:
    payload: bytes
    key_id: str
    signed_at_ms: int


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    detail: str
    key_id: str | None = None


Verification = Verified | Rejected


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of SHA-256 over its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _signed_message(topic: str, key: str | None, kid: str, signed_at_ms: int, payload: bytes) -> bytes:
    # Canonical JSON over everything the signature vouches for; the domain tag keeps it from ever
    # being valid as a signature over anything else signed with the same key.
    body = [ENVELOPE, topic, key, kid, signed_at_ms, base64.b64encode(payload).decode()]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()


def _key_text(key: bytes | str | None) -> str | None:
    return key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        return cls(load_private_key(path))

    def sign(self, payload: bytes, *, topic: str, key: bytes | str | None, now_ms: int | None = None) -> bytes:
        """The envelope to write as the record's value, for this topic and record key."""
        signed_at = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        message = _signed_message(topic, _key_text(key), self.key_id, signed_at, payload)
        envelope = {
            "envelope": ENVELOPE,
            "kid": self.key_id,
            "signed_at": signed_at,
            "payload": base64.b64encode(payload).decode(),
            "sig": base64.b64encode(self._private.sign(message)).decode(),
        }
        return json.dumps(envelope, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class _Envelope:
    kid: str
    signed_at_ms: int
    payload: bytes
    sig: bytes


def _parse(value: bytes | None) -> _Envelope | Rejected:
    if value is None:
        return Rejected(RejectReason.UNSIGNED, "a tombstone (no value): deletions are never signed, so never applied")
    try:
        doc: Any = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return Rejected(RejectReason.UNSIGNED, "not a signed envelope (not JSON)")
    if not isinstance(doc, dict) or doc.get("envelope") != ENVELOPE:
        return Rejected(RejectReason.UNSIGNED, f"not a signed envelope (no {ENVELOPE!r} marker)")
    kid, signed_at = doc.get("kid"), doc.get("signed_at")
    if not isinstance(kid, str) or not isinstance(signed_at, int) or isinstance(signed_at, bool):
        return Rejected(RejectReason.MALFORMED, "the envelope's kid or signed_at is missing or of the wrong type")
    try:
        payload = base64.b64decode(str(doc["payload"]), validate=True)
        sig = base64.b64decode(str(doc["sig"]), validate=True)
    except (KeyError, binascii.Error) as exc:
        return Rejected(RejectReason.MALFORMED, f"the envelope's payload or signature is missing or not base64: {exc}")
    if len(sig) != 64:
        return Rejected(RejectReason.MALFORMED, f"an Ed25519 signature has 64 bytes, not {len(sig)}", kid)
    return _Envelope(kid, signed_at, payload, sig)


def unverified_payload(value: bytes | None) -> bytes | None:
    """What a value claims to carry, without trusting it: the envelope's payload, or the raw value.

    Only for describing a rejected event (whom it would have granted); never for acting on it.
    """
    parsed = _parse(value)
    return parsed.payload if isinstance(parsed, _Envelope) else value


class Verifier:
    """Checks envelopes against one or more trusted public keys.

    ``max_delay_s``, when set, also requires the broker's append time of the record (a topic with
    ``message.timestamp.type=LogAppendTime``: a time no producer chooses) to be within that many
    seconds of the signing time. A copy of an old signed event written again later is then refused
    as ``stale``. Without it (the audit anchors, where an old anchor stays true) time is not checked.
    """

    def __init__(self, public_keys: Iterable[Ed25519PublicKey], max_delay_s: float | None = None) -> None:
        self.keys = {key_id(k): k for k in public_keys}
        if not self.keys:
            raise SigningKeyError("a verifier needs at least one public key")
        self.max_delay_ms = None if max_delay_s is None else int(max_delay_s * 1000)

    @classmethod
    def from_file(cls, path: Path, max_delay_s: float | None = None) -> Verifier:
        return cls(load_public_keys(path), max_delay_s)

    def verify(
        self, value: bytes | None, *, topic: str, key: bytes | str | None, appended_at_ms: int | None = None
    ) -> Verification:
        parsed = _parse(value)
        if isinstance(parsed, Rejected):
            return parsed
        public = self.keys.get(parsed.kid)
        if public is None:
            return Rejected(RejectReason.UNKNOWN_KEY, f"signed by key {parsed.kid}, which is not trusted", parsed.kid)
        message = _signed_message(topic, _key_text(key), parsed.kid, parsed.signed_at_ms, parsed.payload)
        try:
            public.verify(parsed.sig, message)
        except InvalidSignature:
            detail = "the signature does not match this payload, topic and key"
            return Rejected(RejectReason.BAD_SIGNATURE, detail, parsed.kid)
        if self.max_delay_ms is not None:
            if appended_at_ms is None:
                detail = "the record carries no broker append time (the topic must use LogAppendTime)"
                return Rejected(RejectReason.UNTIMED, detail, parsed.kid)
            delay = appended_at_ms - parsed.signed_at_ms
            if abs(delay) > self.max_delay_ms:
                detail = f"appended {delay / 1000:.1f} s after it was signed (at most {self.max_delay_ms / 1000:g} s)"
                return Rejected(RejectReason.STALE, detail, parsed.kid)
        return Verified(parsed.payload, parsed.kid, parsed.signed_at_ms)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot read the Ed25519 private key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every public key in a PEM file (one or more blocks)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the Ed25519 public key file {path}: {exc}") from exc
    keys: list[Ed25519PublicKey] = []
    for block in data.split(_PEM_PUBLIC)[1:]:
        try:
            key = serialization.load_pem_public_key(_PEM_PUBLIC + block)
        except ValueError as exc:
            raise SigningKeyError(f"{path}: a PEM block is not a public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
        keys.append(key)
    if not keys:
        raise SigningKeyError(f"{path} holds no PEM public key")
    return keys


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Created 0600 from the start (never world-readable for a moment); O_EXCL: never overwrite a key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def ensure_key_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """``<name>-signing.pem`` (private, 0600) and ``<name>-verify.pem`` (public) in ``directory``.

    Idempotent: an existing private key is kept, and its public file is (re)written from it, so a
    second call never changes what the first one made.
    """
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}-signing.pem", directory / f"{name}-verify.pem"
    if not private_path.exists():
        try:
            _write_private(private_path, Ed25519PrivateKey.generate())
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError as exc:
            raise SigningKeyError(f"cannot write the private key {private_path}: {exc}") from exc
    pem = public_pem(load_private_key(private_path).public_key())
    if not public_path.exists() or public_path.read_bytes() != pem:
        tmp = public_path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.replace(public_path)
    return private_path, public_path


def ensure_control_keys(directory: Path) -> tuple[Path, Path]:
    """The control plane's key pair (grant and API-key events): (private path, public path)."""
    return ensure_key_pair(directory, "control")


def ensure_audit_keys(directory: Path) -> tuple[Path, Path]:
    """The auditor's key pair (chain-head anchors): (private path, public path)."""
    return ensure_key_pair(directory, "audit")


@dataclass(frozen=True)
class ControlKeys:
    """What a process holds of the control plane's keys: always a verifier; a signer if it writes."""

    verifier: Verifier
    signer: Signer | None = None

    def signing(self) -> Signer:
        if self.signer is None:
            raise SigningKeyError(
                "this process has no control signing key (SHAREBUS_CONTROL_SIGNING_KEY_FILE), so it cannot "
                "write grant or API-key events"
            )
        return self.signer


__all__ = [
    "ENVELOPE",
    "ControlKeys",
    "RejectReason",
    "Rejected",
    "Signer",
    "SigningKeyError",
    "Verification",
    "Verified",
    "Verifier",
    "ensure_audit_keys",
    "ensure_control_keys",
    "ensure_key_pair",
    "key_id",
    "load_private_key",
    "load_public_keys",
    "public_pem",
    "unverified_payload",
]
