"""The portal shows an automatic grant that lapsed (its class no longer unconditional) as the router treats
it: ended, "lapsed" with the reason on its page, in no count of active grants and among no class's granted
consumers; its provider may still revoke it. Over the in-memory portal of ``test_portal_pages``."""

from __future__ import annotations

import re

from fastapi import FastAPI

from sharebus_core.catalogue import ShareType
from sharebus_core.grants import Grant, GrantState
from tests.support.portal import csrf_of
from tests.unit.test_automatic_grants import ENTERPRISE, changed
from tests.unit.test_portal_pages import Client, grants_log, portal_app, state

__all__ = ["portal_app"]  # the pages' fixture, used here by name

NOTE = "The class is no longer shared unconditionally; apply again for the provider&#39;s approval."


def lapsed_grant(app: FastAPI) -> Grant:
    """An automatic grant of HRSS's hrss-si (not a subscriber of the class), then the class made conditional."""
    grant = grants_log(app).apply(
        department="HRSS", requester="hrss-si", consumer="hrss-si", data_class=ENTERPRISE, purpose="p", scenario="s"
    )
    assert grant.automatic
    assert grant.state is GrantState.APPROVED
    conditional = changed(state(app).catalogue, share_type=ShareType.CONDITIONAL)
    state(app).catalogue = conditional
    grants_log(app).catalogue = conditional
    return grant


def section(page: str, name: str) -> str:
    start = page.index(f'id="h-{name}"')
    end = page.find("<section", start)
    return page[start : end if end >= 0 else len(page)]


def test_a_lapsed_automatic_grant_is_ended_on_the_grants_page_and_its_page_says_why(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    bureau = client("bureau")  # HRSS's operator: the bureau sees every grant
    grant = lapsed_grant(app)
    page = bureau.get("/grants").text
    assert grant.grant_id not in section(page, "live")
    assert grant.grant_id not in section(page, "expiring")
    ended = section(page, "ended")
    assert re.search(rf'href="/grants/{grant.grant_id}".*?<td>lapsed</td>', ended, re.S)
    detail = bureau.get(f"/grants/{grant.grant_id}").text
    assert re.search(r'id="grant-state">lapsed<', detail)
    assert NOTE in detail


def test_a_lapsed_automatic_grant_counts_nowhere_as_active(portal_app: tuple[FastAPI, Client]) -> None:
    app, client = portal_app
    bureau, amr = client("bureau"), client("amr.approver")
    lapsed_grant(app)
    row = re.search(r"<td>HRSS · [^<]*</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", bureau.get("/bureau").text)
    assert row is not None
    assert row.group(3) == "0"  # active grants of HRSS
    code = ENTERPRISE.replace("/", ".")
    assert "hrss-si" not in amr.get(f"/catalogue/{code}").text
    row_of_class = re.search(rf'<tr><td><a href="/catalogue/{ENTERPRISE}">.*?</tr>', amr.get("/data").text, re.S)
    assert row_of_class is not None
    assert "tax-levy" in row_of_class.group(0)  # a subscriber
    assert "hrss-si" not in row_of_class.group(0)


def test_the_provider_may_still_revoke_a_lapsed_automatic_grant(portal_app: tuple[FastAPI, Client]) -> None:
    """Were the class unconditional again, the grant would confer again; revoking it ends it for good."""
    app, client = portal_app
    amr = client("amr.approver")
    grant = lapsed_grant(app)
    page = amr.get(f"/grants/{grant.grant_id}").text
    assert re.search(r'id="grant-state">lapsed<', page)
    assert 'id="revoke-form"' in page
    form = {"csrf_token": csrf_of(page), "reason": "purpose ended"}
    assert amr.post(f"/grants/{grant.grant_id}/revoke", data=form).status_code == 303
    assert grants_log(app).log[grant.grant_id].state is GrantState.REVOKED
    assert re.search(r'id="grant-state">revoked<', amr.get(f"/grants/{grant.grant_id}").text)
