"""The portal's followed view of the grants behind the grants log: a page that shows a grant as the log
no longer has it answers 404 or 409 with what happened and a link to reload, never a 500, and acts on
nothing (the log is what decisions read)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharebus_core.grants import Grant, GrantState
from tests.support.portal import csrf_of
from tests.unit import test_portal_pages
from tests.unit.test_portal_pages import apply_for_penalty, grants_log, state

portal_app = test_portal_pages.portal_app  # the pages' fixture: the portal in memory, signed-in clients


Client = Callable[[str | None], TestClient]


def decided_elsewhere(grant: Grant, new_state: GrantState, **update: object) -> Grant:
    """The grant as the gateway or the CLI decided it, written to the log only (the view not there yet)."""
    return grant.model_copy(
        update={"state": new_state, "decided_at": grant.applied_at, "decided_by": grant.provider, **update}
    )


def approve_form(page: str) -> dict[str, object]:
    return {"csrf_token": csrf_of(page), "fields": ["uscc"], "action": "approve"}


def test_deciding_an_application_the_log_no_longer_holds_is_a_404_that_says_to_reload(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    grant_id = apply_for_penalty(tax)
    page = amr.get(f"/departments/AMR/inbox/{grant_id}")
    # Closed on the log (a signed event nobody can read) before the follower brought it to the view.
    del grants_log(app).log[grant_id]
    for form in (approve_form(page.text), {"csrf_token": csrf_of(page.text), "action": "reject", "reason": "r"}):
        answer = amr.post(f"/departments/AMR/inbox/{grant_id}", data=form)
        assert answer.status_code == 404
        assert f"Grant {grant_id} is not on the grants log" in answer.text
        assert "Nothing was changed; reload the page" in answer.text
        assert 'href="/departments/AMR/inbox" id="error-reload"' in answer.text
    assert grant_id not in grants_log(app).log


def test_approving_an_application_already_decided_on_the_log_is_a_409_naming_the_logs_state(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    log = grants_log(app)
    for new_state, update in (
        (GrantState.REJECTED, {"reason": "no legal basis"}),
        # Approved through the gateway for a day that has passed since: expired on the log.
        (GrantState.APPROVED, {"valid_until": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}),
    ):
        grant_id = apply_for_penalty(tax)
        page = amr.get(f"/departments/AMR/inbox/{grant_id}")
        elsewhere = decided_elsewhere(log.log[grant_id], new_state, **update)
        log.log[grant_id] = elsewhere
        answer = amr.post(f"/departments/AMR/inbox/{grant_id}", data=approve_form(page.text))
        assert answer.status_code == 409
        shown = "expired" if new_state is GrantState.APPROVED else new_state.value
        assert f"Grant {grant_id} is {shown} on the grants log, but the page showed it as applied" in answer.text
        assert "reload the page" in answer.text
        assert log.log[grant_id] == elsewhere  # nothing signed over the log's decision
        # The view has the log's state now: the inbox no longer offers the application.
        assert f'id="open-{grant_id}"' not in amr.get("/departments/AMR/inbox").text
        again = amr.get(f"/departments/AMR/inbox/{grant_id}")
        assert again.status_code == 409
        assert f"Application {grant_id} is already {new_state.value}" in again.text


def test_revoking_a_grant_the_log_has_ended_or_no_longer_holds_is_a_409_or_a_404(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    log = grants_log(app)
    ended, gone = apply_for_penalty(tax), apply_for_penalty(tax)
    for grant_id in (ended, gone):
        decision = amr.get(f"/departments/AMR/inbox/{grant_id}")
        assert amr.post(f"/departments/AMR/inbox/{grant_id}", data=approve_form(decision.text)).status_code == 303
    log.log[ended] = decided_elsewhere(log.log[ended], GrantState.REVOKED, reason="revoked through the gateway")
    del log.log[gone]
    page = amr.get(f"/grants/{ended}")
    answer = amr.post(f"/grants/{ended}/revoke", data={"csrf_token": csrf_of(page.text), "reason": "audit finding"})
    assert answer.status_code == 409
    assert f"Grant {ended} is revoked on the grants log, but the page showed it as approved" in answer.text
    assert log.log[ended].reason == "revoked through the gateway"
    assert state(app).view.get(ended, "AMR") == log.log[ended]
    answer = amr.post(f"/grants/{gone}/revoke", data={"csrf_token": csrf_of(page.text), "reason": "audit finding"})
    assert answer.status_code == 404
    assert f"Grant {gone} is not on the grants log as AMR can see it" in answer.text
    assert gone not in log.log


def test_a_refusal_about_the_request_itself_still_shows_the_form_with_the_reason(
    portal_app: tuple[FastAPI, Client],
) -> None:
    """The view and the log agree: the refusal is the workflow's (here: a revocation needs a reason)."""
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    grant_id = apply_for_penalty(tax)
    decision = amr.get(f"/departments/AMR/inbox/{grant_id}")
    assert amr.post(f"/departments/AMR/inbox/{grant_id}", data=approve_form(decision.text)).status_code == 303
    page = amr.get(f"/grants/{grant_id}")
    answer = amr.post(f"/grants/{grant_id}/revoke", data={"csrf_token": csrf_of(page.text), "reason": " "})
    assert answer.status_code == 409
    assert "a revocation must give its reason" in answer.text
    assert 'id="revoke-form"' in answer.text
    assert grants_log(app).log[grant_id].state is GrantState.APPROVED
