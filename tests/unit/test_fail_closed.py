"""Failing closed in the router: what cannot be read or built denies, and never stops the router."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from confluent_kafka import Message

from sharebus_core import control_log, grant_log
from sharebus_core.catalogue import load_catalogue
from sharebus_core.control_log import ControlEventRejected
from sharebus_core.grant_log import GrantFollower, read_grants
from sharebus_core.grants import Grant, GrantState
from sharebus_core.signing import RejectReason, Signer, Verifier
from sharebus_router.handover import HandoverLedger
from sharebus_rules.periods import window_containing
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_control_events import GRANTS, UNUSED, Log, encoded
from tests.unit.test_router_release import ROSTER, STATS, releaser

PENALTY = "301001002/000001"  # real-time, conditional; tax-levy needs a grant


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


@pytest.fixture
def signer() -> Signer:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def verifier(signer: Signer) -> Verifier:
    return Verifier([signer.public_key], max_delay_s=300)


def penalty_grant(grant_id: str = "g-1") -> Grant:
    now = dt.datetime.now(dt.UTC)
    return Grant(
        grant_id=grant_id,
        data_class=PENALTY,
        provider="AMR",
        consumer="tax-levy",
        consumer_department="TAX",
        requester="Li",
        purpose="rating",
        scenario="annual",
        fields=("uscc", "seq"),
        state=GrantState.APPROVED,
        applied_at=now,
        decided_at=now,
        valid_until=now + dt.timedelta(days=30),
    )


def naive_times(grant: Grant) -> bytes:
    """The grant as a careless writer would put it: times without a zone."""
    doc = json.loads(encoded(grant))
    for name in ("applied_at", "decided_at", "valid_until"):
        doc[name] = dt.datetime.fromisoformat(doc[name]).replace(tzinfo=None).isoformat()
    return json.dumps(doc).encode()


def follow(harness: Harness, verifier: Verifier, messages: list[Message]) -> list[ControlEventRejected]:
    """Feeds the router's grant follower callback by hand, then lets the route table catch up."""
    refused: list[ControlEventRejected] = []
    table = harness.table
    follower = GrantFollower(UNUSED, GRANTS, table.on_grant, verifier, refused.append, table.on_closed)
    for msg in messages:
        follower.on_record(msg)
    asyncio.run(table._maintain_once())
    return refused


def targets(harness: Harness, code: str) -> list[str]:
    return [t.consumer for t in harness.table.routes[TOPICS.source(code)].targets]


def penalty_record(harness: Harness, seq: int) -> bytes:
    record = {
        "uscc": "91500000MA00000001",
        "person_id_number": "11010519491231002X",
        "amount": 1.0,
        "seq": seq,
    }
    return harness.encode(PENALTY, record)


def test_an_unreadable_signed_revocation_closes_the_grant(harness: Harness, signer: Signer, verifier: Verifier) -> None:
    log = Log(GRANTS)
    follow(harness, verifier, [log.signed(signer, "g-1", encoded(penalty_grant()))])
    assert "tax-levy" in targets(harness, PENALTY)
    # The control plane's next word on g-1 cannot be read (a newer format, say): it may be a revocation.
    unreadable = encoded(penalty_grant()).replace(b'"state"', b'"state_v2"')
    refused = follow(harness, verifier, [log.signed(signer, "g-1", unreadable)])
    assert [r.reason for r in refused] == [RejectReason.INVALID_PAYLOAD]
    assert "tax-levy" not in targets(harness, PENALTY)
    assert harness.table.closed_grants == {"g-1"}
    assert harness.value("sharebus_grants_unreadable", {}) == 1
    # A later readable event of the grant opens it again.
    follow(harness, verifier, [log.signed(signer, "g-1", encoded(penalty_grant()))])
    assert "tax-levy" in targets(harness, PENALTY)
    assert harness.value("sharebus_grants_unreadable", {}) == 0


def test_a_forged_event_still_changes_nothing(harness: Harness, signer: Signer, verifier: Verifier) -> None:
    log = Log(GRANTS)
    follow(harness, verifier, [log.signed(signer, "g-1", encoded(penalty_grant()))])
    refused = follow(harness, verifier, [log.record("g-1", b"garbage")])
    assert [r.reason for r in refused] == [RejectReason.UNSIGNED]
    assert "tax-levy" in targets(harness, PENALTY)


def test_a_grant_time_without_a_zone_closes_the_grant_and_the_routes_still_build(
    harness: Harness, signer: Signer, verifier: Verifier
) -> None:
    log = Log(GRANTS)
    follow(harness, verifier, [log.signed(signer, "g-1", encoded(penalty_grant()))])
    refused = follow(harness, verifier, [log.signed(signer, "g-1", naive_times(penalty_grant()))])
    assert [r.reason for r in refused] == [RejectReason.INVALID_PAYLOAD]
    assert "tax-levy" not in targets(harness, PENALTY)
    asyncio.run(harness.table.build_all())
    assert harness.table.ready.is_set()
    assert harness.table.failed == set()


def test_one_shot_readers_close_an_unreadable_grant_too(
    signer: Signer, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log(GRANTS)
    messages = [
        log.signed(signer, "g-1", encoded(penalty_grant())),
        log.signed(signer, "g-2", encoded(penalty_grant("g-2"))),
        log.signed(signer, "g-1", naive_times(penalty_grant())),
        log.record("g-2", b"forged"),
    ]
    monkeypatch.setattr(control_log, "read_topic", lambda *_args, **_kw: messages)
    monkeypatch.setattr(grant_log, "ensure_grant_topic", lambda *_args: None)
    assert sorted(read_grants(UNUSED, GRANTS, verifier, on_rejected=lambda _r: None)) == ["g-2"]


def fail_building(harness: Harness, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = harness.table.builder.build

    async def build(class_code: str, *args: Any) -> Any:
        if class_code == code:
            raise ConnectionError("registry unavailable")
        return await real(class_code, *args)

    monkeypatch.setattr(harness.table.builder, "build", build)


def test_a_route_rebuild_that_fails_denies_the_class_until_it_succeeds(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.grant(penalty_grant())
    assert "tax-levy" in targets(harness, PENALTY)
    labels = {"provider": "AMR", "data_class": PENALTY}
    fail_building(harness, PENALTY, monkeypatch)
    harness.table.on_grant(penalty_grant())  # any change of the class triggers a rebuild
    asyncio.run(harness.table._maintain_once())
    route = harness.table.routes[TOPICS.source(PENALTY)]
    assert route.closed
    assert route.targets == ()
    assert harness.value("sharebus_routes_closed", labels) == 1
    assert harness.value("sharebus_route_build_failures_total", labels) >= 1

    harness.handle(PENALTY, penalty_record(harness, 1))
    assert not [s for s in harness.sent if s[0] == TOPICS.delivery("tax-levy")]
    [fact] = harness.facts
    assert {(d["consumer"], d["decision"], d["reason"]) for d in fact["decisions"]} >= {
        ("tax-levy", "deny", "routes_unavailable")
    }
    assert (
        harness.value(
            "sharebus_denials_total",
            {"provider": "AMR", "consumer": "tax-levy", "data_class": PENALTY, "reason": "routes_unavailable"},
        )
        == 1
    )

    monkeypatch.undo()
    asyncio.run(harness.table._maintain_once())  # closed classes are retried on every pass
    assert "tax-levy" in targets(harness, PENALTY)
    assert harness.value("sharebus_routes_closed", labels) == 0


def test_a_class_that_cannot_be_built_does_not_keep_the_router_from_becoming_ready(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_building(harness, PENALTY, monkeypatch)
    harness.table.ready.clear()
    asyncio.run(harness.table.build_all())
    assert harness.table.ready.is_set()
    assert harness.table.failed == {PENALTY}
    assert harness.table.routes[TOPICS.source(PENALTY)].closed
    assert not harness.table.routes[TOPICS.source(STATS)].closed


def test_at_start_a_class_that_cannot_be_built_holds_routing_back_only_within_the_grace(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharebus_router.settings import RouterSettings

    assert RouterSettings.model_fields["route_build_grace_s"].default == 30.0
    fail_building(harness, PENALTY, monkeypatch)
    harness.table.ready.clear()
    asyncio.run(harness.table.build_all(ready_if_closed=False))
    assert not harness.table.ready.is_set()
    monkeypatch.undo()
    asyncio.run(harness.table.build_all(ready_if_closed=False))
    assert harness.table.ready.is_set()
    assert not harness.table.routes[TOPICS.source(PENALTY)].closed


def test_a_window_is_not_released_while_its_routes_are_closed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharebus_router.release import RoutesUnavailable

    fail_building(harness, ROSTER, monkeypatch)
    asyncio.run(harness.table.rebuild(ROSTER))
    window = window_containing(harness.catalogue.data_class(ROSTER).update, dt.datetime.now(dt.UTC))
    with pytest.raises(RoutesUnavailable):
        asyncio.run(releaser(harness).release(ROSTER, window, []))
    assert harness.sent == []  # nothing denied for good: the held records wait for the retry


def test_an_unreadable_hand_over_record_is_skipped_not_fatal() -> None:
    log = Log("ns.handover")
    good = {
        "consumer": "hrss-si",
        "data_class": STATS,
        "grant_id": None,
        "topic": "t",
        "live_from": {"0": 5},
        "at": "2026-01-01T00:00:00+00:00",
    }
    ledger = HandoverLedger()
    unreadable = ledger.load(
        [log.record("a", b"not json"), log.record("b", b'{"consumer": 1}'), log.record("c", json.dumps(good).encode())]
    )
    assert unreadable == 2
    entry = ledger.get(f"hrss-si|{STATS}|subscription")
    assert entry is not None
    assert entry.live_from == {0: 5}
