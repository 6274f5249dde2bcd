"""A grant written to the log but not read back in time is answered as recorded (202), never as the
503 of a log that cannot be read: a client told "unavailable" retries, and a retried application is
a second application (a retried decision is refused as already taken).

Before, the gateway and the portal answered 503 "written ... but not read back yet" after a write the
log had."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharebus_core.grants import Grant, GrantState
from sharebus_gateway import grants_api
from sharebus_gateway.auth import Caller, caller
from sharebus_grants import FollowedGrants, GrantNotConfirmed
from tests.support.portal import csrf_of
from tests.unit import test_grants_followed, test_portal_pages
from tests.unit.memory_log import Broker
from tests.unit.test_grants_followed import apply, service, started
from tests.unit.test_portal_pages import apply_for_penalty, grants_log

broker = test_grants_followed.broker  # the grants log in memory, its follower for real
view = test_grants_followed.view
portal_app = test_portal_pages.portal_app  # the portal in memory, signed-in clients


def test_a_write_not_read_back_in_time_is_reported_as_recorded_with_the_grant(
    broker: Broker, view: FollowedGrants
) -> None:
    view.wait_s = 0.2
    grants = service(started(view))
    broker.held = True
    with pytest.raises(GrantNotConfirmed, match="recorded on the grants log") as caught:
        apply(grants)
    assert len(broker.records) == 1
    assert caught.value.grant.state is GrantState.APPLIED


def test_the_gateway_answers_202_with_the_grant_and_where_to_read_it(broker: Broker, view: FollowedGrants) -> None:
    view.wait_s = 0.2
    grants = service(started(view))
    app = FastAPI()
    app.include_router(grants_api.router)
    app.state.gateway = SimpleNamespace(catalogue=grants.catalogue, grants=grants)
    app.dependency_overrides[caller] = lambda: Caller("tax-levy", "TAX", "k-1")
    client = TestClient(app)
    broker.held = True
    body = {"data_class": test_grants_followed.PENALTY, "consumer": "tax-levy", "purpose": "p", "scenario": "s"}
    answer = client.post("/v1/grants", json=body)
    assert answer.status_code == 202, answer.text
    recorded = answer.json()
    grant_id = recorded["grant"]["grant_id"]
    assert answer.headers["Location"] == f"/v1/grants/{grant_id}"
    assert recorded["confirmed"] is False
    assert "do not send it again" in recorded["detail"]
    assert len(broker.records) == 1
    broker.release()
    shown = client.get(f"/v1/grants/{grant_id}")
    assert shown.status_code == 200
    assert shown.json()["confirmed"] is True
    assert shown.json()["effective_state"] == "applied"


def not_read_back(app: FastAPI) -> list[Grant]:
    """The portal's grant service writes to its log, then times out waiting to read the write back."""
    grants = grants_log(app)
    written: list[Grant] = []

    def write(grant: Grant) -> None:
        grants.log[grant.grant_id] = grant
        written.append(grant)
        raise GrantNotConfirmed(grant, "this service has not read it back (offset 7) within 5 s")

    grants._write = write  # type: ignore[method-assign]
    return written


def test_the_portal_says_an_application_and_a_decision_were_recorded(
    portal_app: tuple[FastAPI, test_portal_pages.Client],
) -> None:
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    grant_id = apply_for_penalty(tax)
    written = not_read_back(app)
    page = amr.get(f"/departments/AMR/inbox/{grant_id}")
    form = {"csrf_token": csrf_of(page.text), "fields": ["uscc"], "action": "approve"}
    answer = amr.post(f"/departments/AMR/inbox/{grant_id}", data=form)
    assert answer.status_code == 202
    assert f"Grant {grant_id} was recorded on the grants log" in answer.text
    assert f'href="/grants/{grant_id}" id="recorded-link"' in answer.text
    assert [g.state for g in written] == [GrantState.APPROVED]
    # The pages' view waits for the follower: the log's order settles whether the decision took.
    shown = test_portal_pages.state(app).view.get(grant_id, "AMR")
    assert shown is not None
    assert shown.state is GrantState.APPLIED
