"""The gateway's grants come from a followed view of the grants log, not a whole-log read per request:
requests answer from memory, a write is visible to the writer's next read, and the view answers 503
(``GrantViewUnavailable``) rather than a stale state while it is starting, failing or behind a write.

The follower runs for real (its thread, ``LogFollower``), over an in-memory broker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from sharebus_core import compacted_log, grant_log
from sharebus_core.catalogue import load_catalogue
from sharebus_core.grant_log import GrantLogError
from sharebus_core.grants import GrantState
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import ControlKeys, Signer, Verifier
from sharebus_grants import FollowedGrants, GrantService, GrantViewUnavailable
from sharebus_grants import service as grant_service
from sharebus_portal.app import build_portal
from sharebus_portal.settings import PortalSettings
from sharebus_rules.grant_workflow import GrantRefused
from tests.support.keys import writer_env
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.memory_log import Broker, Consumer

TOPIC = "unit.grants"
PENALTY = "301001002/000001"  # conditional, provided by AMR
CATALOGUE = load_catalogue(FIXTURE_CATALOGUE)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    broker = Broker()
    monkeypatch.setattr(compacted_log, "ensure_compacted_topic", lambda *_a: None)
    monkeypatch.setattr(compacted_log, "produce_confirmed", broker.append)
    monkeypatch.setattr(KafkaAccess, "consumer", lambda _self, _config: Consumer(broker, TOPIC))

    def whole_log_read(*_a: object, **_kw: object) -> None:
        raise AssertionError("a request read the whole grants log")

    monkeypatch.setattr(grant_service, "read_grants", whole_log_read)
    return broker


@pytest.fixture
def view() -> Iterator[FollowedGrants]:
    signer = Signer(Ed25519PrivateKey.generate())
    view = FollowedGrants(KafkaAccess(bootstrap="unused:9092"), TOPIC, Verifier([signer.public_key]), print, wait_s=5)
    view.signer = signer  # type: ignore[attr-defined]
    yield view
    view.stop()


def service(view: FollowedGrants) -> GrantService:
    signer: Signer = view.signer  # type: ignore[attr-defined]
    control = ControlKeys(Verifier([signer.public_key]), signer)
    return GrantService(CATALOGUE, KafkaAccess(bootstrap="unused:9092"), TOPIC, control=control, source=view)


def apply(grants: GrantService) -> str:
    grant = grants.apply(
        department="TAX", requester="tax-levy", consumer="tax-levy", data_class=PENALTY, purpose="p", scenario="s"
    )
    return grant.grant_id


def started(view: FollowedGrants) -> FollowedGrants:
    view.start()
    assert view.follower.caught_up.wait(5)
    return view


def test_requests_answer_from_the_view_and_see_their_own_writes(broker: Broker, view: FollowedGrants) -> None:
    """Before, every list, show and decision read and verified the whole log (read_grants, here an error)."""
    grants = service(started(view))
    grant_id = apply(grants)
    # The writer's next read holds its write, with no wait of its own.
    assert [g.grant_id for g in grants.list(department="TAX")] == [grant_id]
    approved = grants.approve(grant_id, department="AMR")
    assert grants.show(grant_id, department="TAX").state is GrantState.APPROVED
    assert approved.state is GrantState.APPROVED
    grants.revoke(grant_id, department="AMR", reason="done")
    assert grants.show(grant_id, department="AMR").state is GrantState.REVOKED
    assert len(broker.records) == 3


def test_a_view_that_has_not_read_the_log_to_its_end_does_not_answer(broker: Broker, view: FollowedGrants) -> None:
    with pytest.raises(GrantViewUnavailable, match="starting"):
        service(view).list(department="TAX")


def test_a_write_the_view_does_not_read_back_in_time_is_a_503_and_no_read_is_older(
    broker: Broker, view: FollowedGrants
) -> None:
    view.wait_s = 0.2
    grants = service(started(view))
    broker.held = True
    # Written (the log has it), but not read back: the caller is told so, never shown the old state.
    with pytest.raises(GrantLogError, match="not read it back"):
        apply(grants)
    assert len(broker.records) == 1
    with pytest.raises(GrantViewUnavailable, match="behind this service's last write"):
        grants.list(department="TAX")
    broker.release()
    assert [g.state for g in grants.list(department="TAX")] == [GrantState.APPLIED]


def test_a_decision_waits_for_the_one_before_and_is_checked_against_it(broker: Broker, view: FollowedGrants) -> None:
    """Approve and reject of one application at once: the second is refused, never answered as done
    while the log's readers keep the first."""
    grants = service(started(view))
    grant_id = apply(grants)
    broker.held = True
    outcome: list[object] = []
    first = threading.Thread(target=lambda: outcome.append(grants.approve(grant_id, department="AMR")))
    first.start()
    with broker.changed:
        assert broker.changed.wait_for(lambda: len(broker.records) == 2, 5)
    second: list[BaseException] = []

    def reject() -> None:
        try:
            grants.reject(grant_id, department="AMR", reason="no")
        except (GrantRefused, GrantLogError) as exc:
            second.append(exc)

    later = threading.Thread(target=reject)
    later.start()
    broker.release()
    first.join(5)
    later.join(5)
    assert [type(e) for e in second] == [GrantRefused]
    assert len(broker.records) == 2
    assert grants.show(grant_id, department="AMR").state is GrantState.APPROVED


def test_a_failing_reader_says_why(broker: Broker, view: FollowedGrants, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_self: KafkaAccess, _config: object) -> Consumer:
        raise RuntimeError("broker unreachable")

    monkeypatch.setattr(KafkaAccess, "consumer", broken)
    view.follower.restart_backoff_s = 60
    view.start()
    assert "broker unreachable" in (view.follower.wait_error(5) or "")
    with pytest.raises(GrantViewUnavailable, match="broker unreachable"):
        service(view).list(department="TAX")


def test_a_decision_another_process_made_first_is_not_answered_as_taken(broker: Broker, view: FollowedGrants) -> None:
    """The CLI rejects while the gateway approves: the log's first event stands for every reader, so the
    gateway's approval, written second, is refused rather than answered 200."""
    grants = service(started(view))
    grant_id = apply(grants)
    application = grants.show(grant_id, department="AMR")
    broker.held = True
    rejected = application.model_copy(update={"state": GrantState.REJECTED, "reason": "no", "decided_by": "AMR"})
    signer: Signer = view.signer  # type: ignore[attr-defined]
    grant_log.write_grant(KafkaAccess(bootstrap="unused:9092"), TOPIC, rejected, signer)  # another process
    outcome: list[BaseException] = []

    def approve() -> None:
        try:
            grants.approve(grant_id, department="AMR")
        except GrantRefused as exc:
            outcome.append(exc)

    approving = threading.Thread(target=approve)
    approving.start()
    with broker.changed:
        assert broker.changed.wait_for(lambda: len(broker.records) == 3, 5)
    broker.release()
    approving.join(5)
    assert len(outcome) == 1
    assert "decided elsewhere" in str(outcome[0])
    assert grants.show(grant_id, department="AMR").state is GrantState.REJECTED


def test_the_portal_decides_from_its_followed_view_and_its_pages_see_the_same_reader(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Before, the portal's grant service had no followed view: every application, approval, rejection
    and revocation read and verified the whole grants log (here an error) on the request's path."""
    for name, value in writer_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHAREBUS_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    settings = PortalSettings(namespace="unit", catalogue_dir=FIXTURE_CATALOGUE, accounts_file=tmp_path / "a.json")
    portal = build_portal(settings, CATALOGUE, CollectorRegistry())
    portal.grant_follower.start()
    try:
        assert portal.grant_follower.caught_up.wait(5)
        grant_id = apply(portal.grants)
        approved = portal.grants.approve(grant_id, department="AMR", fields=["uscc"])
        assert approved.state is GrantState.APPROVED
        # The pages' view is fed by the same reader, which had passed the write when approve returned.
        assert [g.state for g in portal.view.history(grant_id)] == [GrantState.APPLIED, GrantState.APPROVED]
        portal.grants.revoke(grant_id, department="AMR", reason="done")
        assert portal.grants.show(grant_id, department="TAX").state is GrantState.REVOKED
    finally:
        portal.grant_follower.stop()
        portal.audit.close()
