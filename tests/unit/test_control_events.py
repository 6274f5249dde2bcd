"""Every reader of grant and API-key events treats an unverifiable one the same way: ignored (it grants,
revokes and deletes nothing), and a long-running reader counts, logs and audits it as a denial."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Message
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from sharebus_audit.auditor import audit_events
from sharebus_core import control_log, grant_log
from sharebus_core.audit_fact import AuditFact
from sharebus_core.audit_trail import GENESIS, seal_block, verify_links
from sharebus_core.catalogue import load_catalogue
from sharebus_core.control_log import ControlEventRejected, ControlRejections, denial_fact, read_verified
from sharebus_core.grant_log import GrantFollower, open_grant
from sharebus_core.grants import Grant, GrantState
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import ControlKeys, RejectReason, Signer, Verifier
from sharebus_core.topics import PUBLIC_CONSUMER
from sharebus_gateway.keys import ApiKey, KeyKind, KeyStore, KeyView, new_key, new_open_data_key, open_key
from tests.unit.fixtures import FIXTURE_CATALOGUE

GRANTS, KEYS = "ns.grants", "ns.apikeys"
UNUSED = KafkaAccess(bootstrap="unused:9092")  # the followers are fed by hand, never connected
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def verifier(signer: Signer) -> Verifier:
    return Verifier([signer.public_key], max_delay_s=300)


def grant(state: GrantState = GrantState.APPROVED, grant_id: str = "g-1", consumer: str = "tax-levy") -> Grant:
    return Grant(
        grant_id=grant_id,
        data_class="301001002/000001",
        provider="AMR",
        consumer=consumer,
        consumer_department="TAX",
        requester="Li",
        purpose="rating",
        scenario="annual",
        fields=("uscc",),
        state=state,
        applied_at=NOW,
        valid_until=NOW + dt.timedelta(days=30),
    )


class Log:
    """Records as the broker hands them out: offsets in order, stamped with the append time."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.offset = 0

    def record(self, key: str | None, value: bytes | None, appended_ms: int | None = None, stamp: int = 0) -> Message:
        self.offset += 1
        now = appended_ms if appended_ms is not None else time.time_ns() // 1_000_000
        kind = stamp or TIMESTAMP_LOG_APPEND_TIME
        return Message(
            topic=self.topic,
            partition=0,
            offset=self.offset - 1,
            key=key.encode() if key is not None else None,
            value=value,
            timestamp=(kind, now),
        )

    def signed(self, signer: Signer, key: str, payload: bytes, **kwargs: Any) -> Message:
        return self.record(key, signer.sign(payload, topic=self.topic, key=key), **kwargs)


def encoded(g: Grant) -> bytes:
    return g.model_dump_json().encode()


def reason(opened: object) -> RejectReason:
    assert isinstance(opened, ControlEventRejected), opened
    return opened.reason


def test_a_signed_grant_opens_and_every_forgery_is_refused(signer: Signer, verifier: Verifier) -> None:
    log = Log(GRANTS)
    assert open_grant(verifier, log.signed(signer, "g-1", encoded(grant()))) == grant()
    forged = open_grant(verifier, log.record("g-1", encoded(grant())))  # what the issue's attacker wrote
    assert reason(forged) is RejectReason.UNSIGNED
    assert isinstance(forged, ControlEventRejected)
    assert forged.claimed_subject == "tax-levy"
    assert (forged.topic, forged.offset, forged.key) == (GRANTS, 1, "g-1")
    stranger = Signer(Ed25519PrivateKey.generate())
    assert reason(open_grant(verifier, log.signed(stranger, "g-1", encoded(grant())))) is RejectReason.UNKNOWN_KEY
    # Correctly signed, but for another grant id than the payload's, or not a grant at all.
    assert reason(open_grant(verifier, log.signed(signer, "g-2", encoded(grant())))) is RejectReason.INVALID_PAYLOAD
    assert reason(open_grant(verifier, log.signed(signer, "g-1", b'{"nope": 1}'))) is RejectReason.INVALID_PAYLOAD
    # A signed event copied and appended again ten minutes later: a replay.
    old = log.signed(signer, "g-1", encoded(grant()), appended_ms=1_000)
    replayed = log.record("g-1", old.value(), appended_ms=1_000 + 600_000)
    assert reason(open_grant(verifier, replayed)) is RejectReason.STALE
    created = log.record("g-1", signer.sign(encoded(grant()), topic=GRANTS, key="g-1"), stamp=TIMESTAMP_CREATE_TIME)
    assert reason(open_grant(verifier, created)) is RejectReason.UNTIMED
    assert reason(open_grant(verifier, log.record("g-1", None))) is RejectReason.UNSIGNED


def follow(verifier: Verifier, messages: list[Message]) -> tuple[dict[str, Grant], list[ControlEventRejected]]:
    """Feeds a GrantFollower's callback the way its thread would (no Kafka needed)."""
    seen: dict[str, Grant] = {}
    refused: list[ControlEventRejected] = []
    follower = GrantFollower(UNUSED, GRANTS, lambda g: seen.__setitem__(g.grant_id, g), verifier, refused.append)
    for msg in messages:
        follower.on_record(msg)
    return seen, refused


def test_the_follower_never_lets_a_forged_event_change_a_grant(signer: Signer, verifier: Verifier) -> None:
    log = Log(GRANTS)
    revoked = grant(GrantState.REVOKED)
    seen, refused = follow(
        verifier,
        [
            log.signed(signer, "g-1", encoded(grant())),
            log.record("g-1", encoded(revoked)),  # a forged revocation does not revoke
            log.record("g-1", None),  # nor does a tombstone delete
            log.signed(signer, "g-1", encoded(revoked)),
            log.record("g-1", encoded(grant())),  # and a forged approval does not undo a real revocation
            log.record("g-9", encoded(grant(grant_id="g-9", consumer="psb-case"))),  # nor grant anything new
        ],
    )
    assert seen == {"g-1": revoked}
    assert [(r.offset, r.reason, r.claimed_subject) for r in refused] == [
        (1, RejectReason.UNSIGNED, "tax-levy"),
        (2, RejectReason.UNSIGNED, None),
        (4, RejectReason.UNSIGNED, "tax-levy"),
        (5, RejectReason.UNSIGNED, "psb-case"),
    ]


def test_one_shot_readers_see_the_same_grants_as_the_follower(
    signer: Signer, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log(GRANTS)
    messages = [
        log.signed(signer, "g-1", encoded(grant())),
        log.record("g-1", None),  # once a deletion for the CLI's reader: now ignored like everywhere
        log.record("g-1", b"not json"),
    ]
    monkeypatch.setattr(control_log, "read_topic", lambda *_args, **_kw: messages)
    refused: list[ControlEventRejected] = []
    read = read_verified(UNUSED, GRANTS, lambda msg: open_grant(verifier, msg), refused.append)
    assert {g.grant_id: g for g in read} == follow(verifier, messages)[0] == {"g-1": grant()}
    assert [r.reason for r in refused] == [RejectReason.UNSIGNED, RejectReason.UNSIGNED]


def test_only_a_signed_entry_is_an_api_key(signer: Signer, verifier: Verifier) -> None:
    log = Log(KEYS)
    refused: list[ControlEventRejected] = []
    view = KeyView(UNUSED, KEYS, verifier, refused.append)
    real = new_key("tax-levy", "TAX", NOW)
    forged = new_key("psb-case", "PSB", NOW)
    token, forged_token = real.token.get_secret_value(), forged.token.get_secret_value()

    view.follower.on_record(log.record(forged.key.key_id, forged.key.model_dump_json().encode()))
    assert view.authenticate(forged_token, KeyKind.SYSTEM) is None  # a record written to the topic is not a key

    view.follower.on_record(log.signed(signer, real.key.key_id, real.key.model_dump_json().encode()))
    assert view.authenticate(token, KeyKind.SYSTEM) == real.key
    # Neither a forged revocation nor a tombstone takes the key away (it is revoked only by a signed event).
    revoked = real.key.model_copy(update={"revoked_at": NOW})
    view.follower.on_record(log.record(real.key.key_id, revoked.model_dump_json().encode()))
    view.follower.on_record(log.record(real.key.key_id, None))
    assert view.authenticate(token, KeyKind.SYSTEM) == real.key
    view.follower.on_record(log.signed(signer, real.key.key_id, revoked.model_dump_json().encode()))
    assert view.authenticate(token, KeyKind.SYSTEM) is None
    assert [(r.reason, r.claimed_subject) for r in refused] == [
        (RejectReason.UNSIGNED, "psb-case"),
        (RejectReason.UNSIGNED, "tax-levy"),
        (RejectReason.UNSIGNED, None),
    ]
    # The entry must be the one of its record key.
    moved = log.signed(signer, "other-id", real.key.model_dump_json().encode())
    assert reason(open_key(verifier, moved)) is RejectReason.INVALID_PAYLOAD


@pytest.fixture
def rejection() -> ControlEventRejected:
    opened = open_grant(Verifier([Ed25519PrivateKey.generate().public_key()]), Log(GRANTS).record("g-7", b"{}"))
    assert isinstance(opened, ControlEventRejected)
    return opened


def test_a_long_running_reader_counts_logs_and_audits_each_rejection(
    rejection: ControlEventRejected, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    audited: list[AuditFact] = []
    report = ControlRejections("router", registry, audited.append)
    report(rejection)
    report(rejection)
    labels = {"topic": GRANTS, "reason": "unsigned"}
    assert registry.get_sample_value("sharebus_control_events_rejected_total", labels) == 2
    assert "ignored a control event on ns.grants[0]@0 (key g-7)" in caplog.text
    assert len(audited) == 2
    assert audited[0].partition_key == f"control:{GRANTS}"


def test_a_failing_audit_does_not_undo_the_rejection(rejection: ControlEventRejected) -> None:
    registry = CollectorRegistry()

    def broken(_fact: AuditFact) -> None:
        raise RuntimeError("kafka down")

    ControlRejections("gateway", registry, broken)(rejection)
    assert registry.get_sample_value("sharebus_control_events_rejected_total", {"topic": GRANTS, "reason": "unsigned"})


def test_the_denial_is_chained_by_the_auditor_like_any_other_fact(rejection: ControlEventRejected) -> None:
    key, value = denial_fact(rejection, "gateway").encode()
    assert key == b"control:ns.grants"
    events = audit_events(json.loads(value), partition=1)
    assert len(events) == 1
    event = events[0]
    assert event["mode"] == "control"
    assert event["decision"] == "deny"
    assert event["reason"] == "control_event_unsigned"
    assert event["reader"] == "gateway"
    assert event["source"] == {"topic": GRANTS, "partition": 0, "offset": 0}
    assert event["key"] == "g-7"
    assert verify_links(1, [(0, seal_block([event], GENESIS))]) == (1, None)


def test_open_data_keys_and_system_keys_never_stand_for_each_other(signer: Signer, verifier: Verifier) -> None:
    log = Log(KEYS)
    view = KeyView(UNUSED, KEYS, verifier, lambda _r: None)
    system = new_key("tax-levy", "TAX", NOW)
    public = new_open_data_key("Chongqing University transport lab", "bus punctuality study", "lab@example.edu", NOW)
    for issued in (system, public):
        view.follower.on_record(log.signed(signer, issued.key.key_id, issued.key.model_dump_json().encode()))
    assert view.authenticate(system.token.get_secret_value(), KeyKind.SYSTEM) == system.key
    assert view.authenticate(system.token.get_secret_value(), KeyKind.OPEN_DATA) is None
    assert view.authenticate(public.token.get_secret_value(), KeyKind.OPEN_DATA) == public.key
    assert view.authenticate(public.token.get_secret_value(), KeyKind.SYSTEM) is None
    # The application it was issued on travels with the key, and it belongs to no department's system.
    assert (public.key.holder, public.key.purpose, public.key.contact) == (
        "Chongqing University transport lab",
        "bus punctuality study",
        "lab@example.edu",
    )
    assert public.key.system == public.key.department == PUBLIC_CONSUMER


def test_a_replayed_approval_never_undoes_a_revocation(signer: Signer, verifier: Verifier) -> None:
    """A signed event copied back within the replay window verifies; the workflow's order still refuses it."""
    log, t = Log(GRANTS), time.time_ns() // 1_000_000
    approved = log.signed(signer, "g-1", encoded(grant()), appended_ms=t)
    revoked = grant(GrantState.REVOKED)
    messages = [
        log.signed(signer, "g-1", encoded(grant(GrantState.APPLIED)), appended_ms=t - 1_000),
        approved,
        log.signed(signer, "g-1", encoded(revoked), appended_ms=t + 60_000),
        log.record("g-1", approved.value(), appended_ms=t + 100_000),  # within the 300 s window
        log.record("g-1", approved.value(), appended_ms=t + 100_000),  # and again: still refused
    ]
    seen, refused = follow(verifier, messages)
    assert seen == {"g-1": revoked}
    assert [(r.offset, r.reason) for r in refused] == [(3, RejectReason.STALE), (4, RejectReason.STALE)]
    assert read_grants_of(verifier, messages) == {"g-1": revoked}


def test_only_a_forward_step_of_the_workflow_changes_a_grant(signer: Signer, verifier: Verifier) -> None:
    log = Log(GRANTS)
    rejected = grant(GrantState.REJECTED)
    seen, refused = follow(
        verifier,
        [
            log.signed(signer, "g-1", encoded(grant(GrantState.APPLIED))),
            log.signed(signer, "g-1", encoded(grant(GrantState.APPLIED))),  # the same event again: no change
            log.signed(signer, "g-1", encoded(rejected)),
            log.signed(signer, "g-1", encoded(grant())),  # an approval written after the rejection (a race)
            log.signed(signer, "g-1", encoded(grant(GrantState.APPLIED))),  # nor back to applied
        ],
    )
    assert seen == {"g-1": rejected}
    assert [(r.offset, r.reason) for r in refused] == [(3, RejectReason.STALE), (4, RejectReason.STALE)]


def test_a_grant_closed_by_an_unreadable_event_is_not_reopened_by_a_replay(signer: Signer, verifier: Verifier) -> None:
    log, history = Log(GRANTS), grant_log.GrantHistory(verifier)
    approved = log.signed(signer, "g-1", encoded(grant()))
    assert history.open(approved) == grant()
    assert reason(history.open(log.signed(signer, "g-1", b'{"grant_id": "g-1", "state": "paused"}'))) is (
        RejectReason.INVALID_PAYLOAD
    )
    assert reason(history.open(log.record("g-1", approved.value()))) is RejectReason.STALE
    revoked = grant(GrantState.REVOKED)
    assert history.open(log.signed(signer, "g-1", encoded(revoked))) == revoked  # a readable word again


def read_grants_of(verifier: Verifier, messages: list[Message]) -> dict[str, Grant]:
    """The one-shot reader (CLI, gateway's GrantService) over the same records."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(control_log, "read_topic", lambda *_args, **_kw: messages)
        patch.setattr(grant_log, "ensure_grant_topic", lambda *_args: None)
        return grant_log.read_grants(UNUSED, GRANTS, verifier)


def entry(key: ApiKey) -> bytes:
    return key.model_dump_json().encode()


def followed_keys(verifier: Verifier, messages: list[Message]) -> tuple[KeyView, list[ControlEventRejected], list[str]]:
    """The gateway's key view after following ``messages``, with what it refused and the keys it revoked."""
    refused: list[ControlEventRejected] = []
    revocations: list[str] = []
    view = KeyView(UNUSED, KEYS, verifier, refused.append, on_revoked=revocations.append)
    for msg in messages:
        view.follower.on_record(msg)
    return view, refused, revocations


def test_a_replayed_issue_never_undoes_a_revocation(signer: Signer, verifier: Verifier) -> None:
    """A signed "issued" copied back after the real "revoked", within the replay window, is still refused."""
    log, t = Log(KEYS), time.time_ns() // 1_000_000
    issued = new_key("tax-levy", "TAX", NOW)
    key_id, token = issued.key.key_id, issued.token.get_secret_value()
    revoked = issued.key.model_copy(update={"revoked_at": NOW + dt.timedelta(minutes=1)})
    first = log.signed(signer, key_id, entry(issued.key), appended_ms=t)
    messages = [
        first,
        log.signed(signer, key_id, entry(revoked), appended_ms=t + 60_000),
        log.record(key_id, first.value(), appended_ms=t + 100_000),  # within the 300 s window
        log.record(key_id, first.value(), appended_ms=t + 120_000),  # and again: still refused
    ]
    view, refused, revocations = followed_keys(verifier, messages)
    assert view.authenticate(token, KeyKind.SYSTEM) is None
    assert not view.active(key_id)
    assert view.count_active(KeyKind.SYSTEM) == 0
    assert revocations == [key_id]
    assert [(r.offset, r.reason, r.claimed_subject) for r in refused] == [
        (2, RejectReason.STALE, "tax-levy"),
        (3, RejectReason.STALE, "tax-levy"),
    ]
    assert keys_read_by_the_cli(verifier, messages) == [revoked]


def test_only_a_forward_step_changes_a_key(signer: Signer, verifier: Verifier) -> None:
    log = Log(KEYS)
    issued = new_key("tax-levy", "TAX", NOW)
    key_id, token = issued.key.key_id, issued.token.get_secret_value()
    other = new_key("tax-levy", "TAX", NOW).key.model_copy(update={"key_id": key_id})  # another secret, same id
    revoked = issued.key.model_copy(update={"revoked_at": NOW})
    refused: list[ControlEventRejected] = []
    view = KeyView(UNUSED, KEYS, verifier, refused.append)
    messages = [
        log.signed(signer, key_id, entry(issued.key)),
        log.signed(signer, key_id, entry(issued.key)),  # the same entry again: no change
        log.signed(signer, key_id, entry(other)),  # a different key under the same id does not replace it
        log.signed(signer, key_id, entry(other.model_copy(update={"revoked_at": NOW}))),  # nor revokes this one
        log.signed(signer, key_id, entry(revoked)),
        log.signed(signer, key_id, entry(revoked)),  # the same revocation again: no change
        log.signed(signer, key_id, entry(revoked.model_copy(update={"revoked_at": None}))),  # never back
    ]
    for msg in messages[:4]:
        view.follower.on_record(msg)
    assert view.authenticate(token, KeyKind.SYSTEM) == issued.key
    for msg in messages[4:]:
        view.follower.on_record(msg)
    assert view.authenticate(token, KeyKind.SYSTEM) is None
    assert [(r.offset, r.reason) for r in refused] == [
        (2, RejectReason.STALE),
        (3, RejectReason.STALE),
        (6, RejectReason.STALE),
    ]
    assert keys_read_by_the_cli(verifier, messages) == [revoked]


def keys_read_by_the_cli(verifier: Verifier, messages: list[Message]) -> list[ApiKey]:
    """The one-shot reader (the CLI's ``apikey list`` and ``revoke``, the open-data desk) over the same records."""
    store = KeyStore(load_catalogue(FIXTURE_CATALOGUE), UNUSED, KEYS, control=ControlKeys(verifier))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(control_log, "read_topic", lambda *_args, **_kw: messages)
        return store.keys_of("tax-levy")


def test_a_key_closed_by_a_signed_entry_nobody_can_read_stops_working_and_stays_closed(
    signer: Signer, verifier: Verifier
) -> None:
    """The unreadable entry may have been its revocation: the key fails closed, and a replay cannot reopen it."""
    log, t = Log(KEYS), time.time_ns() // 1_000_000
    issued = new_key("tax-levy", "TAX", NOW)
    key_id, token = issued.key.key_id, issued.token.get_secret_value()
    first = log.signed(signer, key_id, entry(issued.key), appended_ms=t)
    messages = [
        first,
        log.signed(signer, key_id, b'{"not": "a key entry"}', appended_ms=t + 1_000),
        log.record(key_id, first.value(), appended_ms=t + 2_000),  # the "issued" replayed within the window
    ]
    view, refused, revocations = followed_keys(verifier, messages)
    assert view.authenticate(token, KeyKind.SYSTEM) is None
    assert not view.active(key_id)
    assert revocations == [key_id]
    assert [(r.offset, r.reason) for r in refused] == [(1, RejectReason.INVALID_PAYLOAD), (2, RejectReason.STALE)]
    assert keys_read_by_the_cli(verifier, messages) == []
