"""A grant the gateway's view closes between the decision's two reads (``_decide``'s visibility check and
the service's own read) is answered 404, as every other grant the caller cannot see, not 500.

The follower runs for real over the in-memory broker of ``test_grants_followed``; the grant is closed as
the log closes one: by a signed event of its key that nobody can read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharebus_core.control_log import append_signed
from sharebus_core.grants import Grant
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Signer
from sharebus_gateway import grants_api
from sharebus_gateway.auth import Caller, caller
from sharebus_grants import FollowedGrants
from tests.unit import test_grants_followed
from tests.unit.memory_log import Broker
from tests.unit.test_grants_followed import TOPIC, apply, service, started

broker = test_grants_followed.broker
view = test_grants_followed.view


@pytest.mark.parametrize("action", ["reject", "approve"])
def test_a_grant_closed_between_the_two_reads_of_a_decision_is_404(
    broker: Broker, view: FollowedGrants, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """Before, the second read's GrantNotFound (a LookupError) reached no handler of ``_decided``: a 500."""
    grants = service(started(view))
    grant_id = apply(grants)
    signer: Signer = view.signer  # type: ignore[attr-defined]
    shown = grants.show

    def show_then_closed(gid: str, *, department: str) -> Grant:
        grant = shown(gid, department=department)
        # The control plane's latest word on the grant, which no reader can parse: every view closes it.
        at = append_signed(KafkaAccess(bootstrap="unused:9092"), TOPIC, gid, b"{not a grant", signer)
        assert view.follower.wait_past(at, 5)
        return grant

    monkeypatch.setattr(grants, "show", show_then_closed)
    app = FastAPI()
    app.include_router(grants_api.router)
    app.state.gateway = SimpleNamespace(catalogue=grants.catalogue, grants=grants)
    app.dependency_overrides[caller] = lambda: Caller("amr-sys", "AMR", "k-1")
    body = {"reason": "no"} if action == "reject" else {}
    answer = TestClient(app, raise_server_exceptions=False).post(f"/v1/grants/{grant_id}/{action}", json=body)
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"] == "no such grant visible to your department"
