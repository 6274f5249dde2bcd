"""A decision the gateway wrote is answered by whether the log's history took it, not by whether the grant
is still as written: another process may add a later step (the CLI revoking) before the view reads ours back.

The follower runs for real over the in-memory broker of ``test_grants_followed``."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from sharebus_core import grant_log
from sharebus_core.grants import Grant, GrantState
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import Written
from sharebus_core.signing import Signer
from sharebus_grants import FollowedGrants, GrantService
from sharebus_grants import service as grant_service
from sharebus_rules import grant_workflow
from sharebus_rules.grant_workflow import GrantRefused
from tests.unit import test_grants_followed
from tests.unit.memory_log import Broker
from tests.unit.test_grants_followed import TOPIC, apply, service, started

broker = test_grants_followed.broker
view = test_grants_followed.view
ACCESS = KafkaAccess(bootstrap="unused:9092")


def _spy_writes(monkeypatch: pytest.MonkeyPatch) -> list[Grant]:
    written: list[Grant] = []
    real = grant_log.write_grant

    def spy(access: KafkaAccess, topic: str, grant: Grant, signer: Signer) -> object:
        written.append(grant)
        return real(access, topic, grant, signer)

    monkeypatch.setattr(grant_service, "write_grant", spy)
    return written


def _read_back_late(view: FollowedGrants, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's read-back returns only once the view has also read every later event on the log: the
    race the finding is about (another process's step lands before the writer looks), made certain."""
    real = view.written

    def written(at: Written) -> None:
        real(at)
        last = Written(0, len(broker.records) - 1)
        assert view.follower.wait_past(last, 5), "the view did not read the later event"

    monkeypatch.setattr(view, "written", written)


def _approve_in_thread(grants: GrantService, grant_id: str, outcome: list[Grant | GrantRefused]) -> threading.Thread:
    def approve() -> None:
        try:
            outcome.append(grants.approve(grant_id, department="AMR"))
        except GrantRefused as exc:
            outcome.append(exc)

    approving = threading.Thread(target=approve)
    approving.start()
    return approving


def _revoked(grant: Grant) -> Grant:
    return grant_workflow.revoke(grant, acting_department="AMR", now=dt.datetime.now(dt.UTC), reason="stop")


def test_an_approval_revoked_before_it_was_read_back_is_answered_as_taken(
    broker: Broker, view: FollowedGrants, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Log order APPLIED -> APPROVED (ours) -> REVOKED (the CLI's): every reader took our approval. Before,
    the writer compared the view's latest state (revoked) with what it wrote and refused: 409 at the
    gateway, "Nothing was changed" on the portal, for an approval that took effect."""
    grants = service(started(view))
    grant_id = apply(grants)
    written = _spy_writes(monkeypatch)
    _read_back_late(view, broker, monkeypatch)
    broker.held = True
    outcome: list[Grant | GrantRefused] = []
    approving = _approve_in_thread(grants, grant_id, outcome)
    with broker.changed:
        assert broker.changed.wait_for(lambda: len(broker.records) == 2, 5)
    signer: Signer = view.signer  # type: ignore[attr-defined]
    grant_log.write_grant(ACCESS, TOPIC, _revoked(written[-1]), signer)  # another process, right after ours
    broker.release()
    approving.join(10)
    assert len(outcome) == 1
    assert not isinstance(outcome[0], GrantRefused), f"an approval that took effect answered as: {outcome[0]}"
    assert outcome[0].state is GrantState.APPROVED
    now = view.get(grant_id)
    assert now is not None
    assert now.state is GrantState.REVOKED


def test_an_approval_after_another_one_that_was_then_revoked_is_still_refused(
    broker: Broker, view: FollowedGrants, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process approves first and then revokes: the grant's later state follows an approval, but
    not ours (readers ignored ours as stale), so ours is still refused."""
    grants = service(started(view))
    grant_id = apply(grants)
    application = grants.show(grant_id, department="AMR")
    _read_back_late(view, broker, monkeypatch)
    broker.held = True
    theirs = grant_workflow.approve(application, acting_department="AMR", now=dt.datetime.now(dt.UTC), reason="cli")
    signer: Signer = view.signer  # type: ignore[attr-defined]
    grant_log.write_grant(ACCESS, TOPIC, theirs, signer)
    outcome: list[Grant | GrantRefused] = []
    approving = _approve_in_thread(grants, grant_id, outcome)
    with broker.changed:
        assert broker.changed.wait_for(lambda: len(broker.records) == 3, 5)
    grant_log.write_grant(ACCESS, TOPIC, _revoked(theirs), signer)
    broker.release()
    approving.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], GrantRefused)
    assert "decided elsewhere" in str(outcome[0])
