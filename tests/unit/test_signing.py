"""Ed25519 envelopes: what verifies, and every way a tampered, moved, replayed or foreign value is refused."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharebus_core.settings import BusSettings
from sharebus_core.signing import (
    ControlKeys,
    Rejected,
    RejectReason,
    Signer,
    SigningKeyError,
    Verified,
    Verifier,
    ensure_control_keys,
    ensure_key_pair,
    key_id,
    load_public_keys,
    public_pem,
    unverified_payload,
)

TOPIC, KEY = "ns.grants", "g-1"
PAYLOAD = b'{"grant_id":"g-1","state":"approved"}'


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def verifier(signer: Signer) -> Verifier:
    return Verifier([signer.public_key])


def rejected(outcome: Verified | Rejected) -> RejectReason:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reason


def edited(envelope: bytes, **changes: object) -> bytes:
    doc = json.loads(envelope)
    doc.update(changes)
    return json.dumps(doc).encode()


def test_a_signed_value_verifies_and_gives_back_its_payload(signer: Signer, verifier: Verifier) -> None:
    envelope = signer.sign(PAYLOAD, topic=TOPIC, key=KEY, now_ms=1_000)
    outcome = verifier.verify(envelope, topic=TOPIC, key=KEY.encode())  # bytes or str keys are the same key
    assert outcome == Verified(PAYLOAD, signer.key_id, 1_000)
    assert len(signer.key_id) == 16
    assert signer.key_id == key_id(signer.public_key)


def test_a_tampered_payload_signature_or_time_is_a_bad_signature(signer: Signer, verifier: Verifier) -> None:
    envelope = signer.sign(PAYLOAD, topic=TOPIC, key=KEY)
    forged_payload = base64.b64encode(PAYLOAD.replace(b"approved", b"revoked")).decode()
    sig = bytearray(base64.b64decode(json.loads(envelope)["sig"]))
    sig[0] ^= 1
    for tampered in (
        edited(envelope, payload=forged_payload),
        edited(envelope, sig=base64.b64encode(bytes(sig)).decode()),
        edited(envelope, signed_at=json.loads(envelope)["signed_at"] + 1),
    ):
        assert rejected(verifier.verify(tampered, topic=TOPIC, key=KEY)) is RejectReason.BAD_SIGNATURE


def test_a_signed_value_moved_to_another_key_or_topic_is_a_bad_signature(signer: Signer, verifier: Verifier) -> None:
    envelope = signer.sign(PAYLOAD, topic=TOPIC, key=KEY)
    assert rejected(verifier.verify(envelope, topic=TOPIC, key="g-2")) is RejectReason.BAD_SIGNATURE
    assert rejected(verifier.verify(envelope, topic=TOPIC, key=None)) is RejectReason.BAD_SIGNATURE
    assert rejected(verifier.verify(envelope, topic="other-ns.grants", key=KEY)) is RejectReason.BAD_SIGNATURE
    assert rejected(verifier.verify(envelope, topic="ns.apikeys", key=KEY)) is RejectReason.BAD_SIGNATURE


def test_another_key_is_unknown_even_with_a_valid_signature(verifier: Verifier) -> None:
    stranger = Signer(Ed25519PrivateKey.generate())
    outcome = verifier.verify(stranger.sign(PAYLOAD, topic=TOPIC, key=KEY), topic=TOPIC, key=KEY)
    assert rejected(outcome) is RejectReason.UNKNOWN_KEY
    assert isinstance(outcome, Rejected)
    assert outcome.key_id == stranger.key_id
    # A stranger claiming the trusted key id fails on the signature instead.
    claimed = edited(stranger.sign(PAYLOAD, topic=TOPIC, key=KEY), kid=next(iter(verifier.keys)))
    assert rejected(verifier.verify(claimed, topic=TOPIC, key=KEY)) is RejectReason.BAD_SIGNATURE


@pytest.mark.parametrize("value", [PAYLOAD, b"\xff\xfe garbage", b"[1, 2]", b'"text"', None])
def test_plain_values_garbage_and_tombstones_are_unsigned(verifier: Verifier, value: bytes | None) -> None:
    assert rejected(verifier.verify(value, topic=TOPIC, key=KEY)) is RejectReason.UNSIGNED


@pytest.mark.parametrize(
    "changes",
    [
        {"sig": None},
        {"sig": "not base64!"},
        {"sig": base64.b64encode(b"short").decode()},
        {"payload": "%%%"},
        {"kid": 7},
        {"signed_at": "yesterday"},
        {"signed_at": True},
    ],
)
def test_an_envelope_with_broken_fields_is_malformed(
    signer: Signer, verifier: Verifier, changes: dict[str, object]
) -> None:
    envelope = edited(signer.sign(PAYLOAD, topic=TOPIC, key=KEY), **changes)
    assert rejected(verifier.verify(envelope, topic=TOPIC, key=KEY)) is RejectReason.MALFORMED


def test_without_a_signature_field_an_envelope_is_malformed(signer: Signer, verifier: Verifier) -> None:
    doc = json.loads(signer.sign(PAYLOAD, topic=TOPIC, key=KEY))
    del doc["sig"]
    assert rejected(verifier.verify(json.dumps(doc).encode(), topic=TOPIC, key=KEY)) is RejectReason.MALFORMED


def test_a_replay_appended_long_after_signing_is_stale(signer: Signer) -> None:
    timed = Verifier([signer.public_key], max_delay_s=300)
    envelope = signer.sign(PAYLOAD, topic=TOPIC, key=KEY, now_ms=1_000_000)
    assert isinstance(timed.verify(envelope, topic=TOPIC, key=KEY, appended_at_ms=1_000_000 + 2_000), Verified)
    assert isinstance(timed.verify(envelope, topic=TOPIC, key=KEY, appended_at_ms=1_000_000 + 300_000), Verified)
    late = timed.verify(envelope, topic=TOPIC, key=KEY, appended_at_ms=1_000_000 + 300_001)
    assert rejected(late) is RejectReason.STALE
    early = timed.verify(envelope, topic=TOPIC, key=KEY, appended_at_ms=1_000_000 - 300_001)
    assert rejected(early) is RejectReason.STALE
    # A record whose time the producer chose (CreateTime) cannot rule a replay out.
    assert rejected(timed.verify(envelope, topic=TOPIC, key=KEY, appended_at_ms=None)) is RejectReason.UNTIMED
    # Without a policy (anchors) time is not checked.
    assert isinstance(Verifier([signer.public_key]).verify(envelope, topic=TOPIC, key=KEY), Verified)


def test_a_verifier_trusts_every_key_it_holds_for_rotation(signer: Signer) -> None:
    new = Signer(Ed25519PrivateKey.generate())
    both = Verifier([signer.public_key, new.public_key])
    for each in (signer, new):
        assert isinstance(both.verify(each.sign(PAYLOAD, topic=TOPIC, key=KEY), topic=TOPIC, key=KEY), Verified)
    with pytest.raises(SigningKeyError):
        Verifier([])


def test_unverified_payload_is_the_claim_of_either_shape(signer: Signer) -> None:
    assert unverified_payload(signer.sign(PAYLOAD, topic=TOPIC, key=KEY)) == PAYLOAD
    assert unverified_payload(PAYLOAD) == PAYLOAD
    assert unverified_payload(None) is None


def test_key_pair_files_are_made_once_with_a_private_file_only_the_owner_reads(tmp_path: Path) -> None:
    private, public = ensure_control_keys(tmp_path / "keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    first = private.read_bytes(), public.read_bytes()
    assert ensure_control_keys(tmp_path / "keys") == (private, public)
    assert (private.read_bytes(), public.read_bytes()) == first  # idempotent: the same pair
    public.unlink()
    ensure_control_keys(tmp_path / "keys")
    assert public.read_bytes() == first[1]  # the public half is rebuilt from the kept private key
    signer, verifier = Signer.from_file(private), Verifier.from_file(public)
    assert isinstance(verifier.verify(signer.sign(b"x", topic="t", key="k"), topic="t", key="k"), Verified)
    audit_private, _ = ensure_key_pair(tmp_path / "keys", "audit")
    assert Signer.from_file(audit_private).key_id != signer.key_id


def test_a_public_key_file_may_hold_several_keys_and_only_ed25519_ones(tmp_path: Path) -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    both = tmp_path / "both.pem"
    both.write_bytes(public_pem(a.public_key()) + public_pem(b.public_key()))
    assert [key_id(k) for k in load_public_keys(both)] == [key_id(a.public_key()), key_id(b.public_key())]
    ec_key = ec.generate_private_key(ec.SECP256R1())
    wrong = tmp_path / "ec.pem"
    wrong.write_bytes(
        ec_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SigningKeyError, match="not an Ed25519 public key"):
        load_public_keys(wrong)
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here")
    with pytest.raises(SigningKeyError, match="no PEM public key"):
        load_public_keys(empty)
    with pytest.raises(SigningKeyError, match="cannot read"):
        Signer.from_file(tmp_path / "missing.pem")


def test_settings_refuse_a_process_without_the_keys_it_needs(tmp_path: Path) -> None:
    private, public = ensure_control_keys(tmp_path)
    with pytest.raises(SigningKeyError, match="SHAREBUS_CONTROL_VERIFY_KEY_FILE"):
        BusSettings(control_verify_key_file=None).control_keys()
    reader = BusSettings(control_verify_key_file=public).control_keys()
    assert reader.signer is None
    with pytest.raises(SigningKeyError, match="SHAREBUS_CONTROL_SIGNING_KEY_FILE"):
        reader.signing()
    with pytest.raises(SigningKeyError, match="SHAREBUS_CONTROL_SIGNING_KEY_FILE"):
        BusSettings(control_verify_key_file=public).control_keys(sign=True)
    writer = BusSettings(control_verify_key_file=public, control_signing_key_file=private).control_keys(sign=True)
    assert isinstance(writer, ControlKeys)
    assert writer.signing().key_id in writer.verifier.keys
    assert writer.verifier.max_delay_ms == 300_000
    with pytest.raises(SigningKeyError, match="SHAREBUS_AUDIT_VERIFY_KEY_FILE"):
        BusSettings(audit_verify_key_file=None).audit_verifier()


def test_settings_read_the_key_files_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = ensure_control_keys(tmp_path)
    monkeypatch.setenv("SHAREBUS_CONTROL_SIGNING_KEY_FILE", str(private))
    monkeypatch.setenv("SHAREBUS_CONTROL_VERIFY_KEY_FILE", str(public))
    monkeypatch.setenv("SHAREBUS_CONTROL_MAX_DELAY_S", "60")
    keys = BusSettings().control_keys(sign=True)
    assert keys.signing().key_id == Signer.from_file(private).key_id
    assert keys.verifier.max_delay_ms == 60_000
