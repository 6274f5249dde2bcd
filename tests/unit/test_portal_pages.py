"""The portal's pages over HTTP, with the grant log and the audit in memory (no Kafka): sign-in,
sessions, CSRF, the apply/approve/revoke flow, four eyes, and that refusals are 403s and audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import GrantState
from sharebus_portal.accounts import Account, hash_password
from sharebus_portal.app import create_app
from sharebus_portal.settings import PortalSettings
from sharebus_portal.state import Portal
from tests.support.portal import PASSWORD, MemoryAudit, MemoryGrants, add_officials, csrf_of, memory_portal

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"
PENALTY = "301001002/000001"  # conditional, AMR; sensitive person_id_number

Client = Callable[[str | None], TestClient]


@pytest.fixture
def portal_app(tmp_path: Path) -> Iterator[tuple[FastAPI, Client]]:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    add_officials(catalogue, tmp_path / "accounts.json")
    settings = PortalSettings(
        namespace="unit", catalogue_dir=FIXTURE_CATALOGUE, accounts_file=tmp_path / "accounts.json"
    )
    app = create_app(settings, catalogue, build=memory_portal)
    opened: list[TestClient] = []

    def client(username: str | None) -> TestClient:
        # https: the session cookie is Secure, and a client keeps it only over https.
        c = TestClient(app, base_url="https://testserver", follow_redirects=False)
        c.__enter__()
        opened.append(c)
        if username is not None:
            response = c.post("/login", data={"username": username, "password": PASSWORD, "next": "/catalogue"})
            assert response.status_code == 303, response.text
        return c

    yield app, client
    for c in opened:
        c.__exit__(None, None, None)


def state(app: FastAPI) -> Portal:
    portal: Portal = app.state.portal
    return portal


def audit_reasons(app: FastAPI) -> list[str | None]:
    audit = state(app).audit
    assert isinstance(audit, MemoryAudit)
    return [f.decisions[0].reason for f in audit.facts]


def grants_log(app: FastAPI) -> MemoryGrants:
    grants = state(app).grants
    assert isinstance(grants, MemoryGrants)
    return grants


def apply_for_penalty(tax: TestClient, masked: tuple[str, ...] = ()) -> str:
    page = tax.get("/apply", params={"data_class": PENALTY})
    assert page.status_code == 200
    form = {
        "csrf_token": csrf_of(page.text),
        "data_class": PENALTY,
        "consumer": "tax-levy",
        "fields": ["uscc", "person_id_number", "seq"],
        "masked": list(masked),
        "purpose": "tax credit rating",
        "scenario": "annual rating",
        "valid_days": "30",
        "action": "submit",
    }
    response = tax.post("/apply", data=form)
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/grants/(g-[0-9a-f]+)", response.headers["location"])
    assert found is not None
    return found.group(1)


def test_pages_need_a_session_and_the_sign_in_page_only_redirects_inside_the_site(
    portal_app: tuple[FastAPI, Client],
) -> None:
    _app, client = portal_app
    anonymous = client(None)
    response = anonymous.get("/catalogue", params={"q": "x"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/catalogue%3Fq%3Dx"
    login = anonymous.post("/login", data={"username": "tax.requester", "password": PASSWORD, "next": "//evil.example"})
    assert login.status_code == 303
    assert login.headers["location"] == "/catalogue"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "secure" in cookie
    assert "samesite=strict" in cookie
    page = anonymous.get("/catalogue")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_sign_in_posted_from_another_site_is_refused_and_starts_no_session(
    portal_app: tuple[FastAPI, Client],
) -> None:
    """Login CSRF: a page elsewhere that posts its own account's credentials to /login would sign the
    official's browser in as that account (their applications then filed under it). The sign-in form
    has no session to carry a token, so the browser's own word on where the post came from decides."""
    _app, client = portal_app
    anonymous = client(None)
    form = {"username": "tax.requester", "password": PASSWORD, "next": "/catalogue"}
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        refused = anonymous.post("/login", data=form, headers=headers)
        assert refused.status_code == 403, headers
        assert "set-cookie" not in refused.headers, headers
    assert anonymous.get("/grants").status_code == 303  # still signed out
    same = anonymous.post(
        "/login", data=form, headers={"Sec-Fetch-Site": "same-origin", "Origin": "https://testserver"}
    )
    assert same.status_code == 303
    assert "set-cookie" in same.headers


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(
    portal_app: tuple[FastAPI, Client], tmp_path: Path
) -> None:
    """The operator replaces an account's password (``portal account add`` over it: a leaked password,
    a stolen session): every session signed in before must end, not live on for the session's TTL.
    The same for an account removed and added again under its name, for someone else perhaps."""
    app, client = portal_app
    before, other = client("tax.requester"), client("tax.approver")
    assert before.get("/grants").status_code == 200
    accounts = state(app).accounts
    old = accounts.get("tax.requester")
    assert old is not None
    accounts.put(old.model_copy(update={"password_hash": hash_password("a brand new password")}))
    refused = before.get("/grants")
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/login")
    assert other.get("/grants").status_code == 200  # another account's session goes on
    again = client(None)
    assert (
        again.post("/login", data={"username": "tax.requester", "password": "a brand new password"}).status_code == 303
    )
    assert again.get("/grants").status_code == 200


def test_failed_sign_ins_are_audited_and_rate_limited(portal_app: tuple[FastAPI, Client], tmp_path: Path) -> None:
    app, client = portal_app
    anonymous = client(None)
    for _ in range(5):
        wrong = anonymous.post("/login", data={"username": "tax.requester", "password": "not the password"})
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
    # Locked out now, even with the right password.
    locked = anonymous.post("/login", data={"username": "tax.requester", "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert audit_reasons(app) == ["bad_credentials"] * 5 + ["rate_limited"]
    assert all(f.extra["action"] == "portal.signin" for f in state(app).audit.facts)  # type: ignore[attr-defined]
    stored = (tmp_path / "accounts.json").read_text()
    assert PASSWORD not in stored
    assert "$argon2id$" in stored
    assert (tmp_path / "accounts.json").stat().st_mode & 0o777 == 0o600


def test_a_body_over_the_limit_is_refused_before_it_is_parsed_even_before_sign_in(
    portal_app: tuple[FastAPI, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = portal_app
    anonymous = client(None)
    limit = state(app).settings.max_body_bytes
    verified: list[str] = []
    monkeypatch.setattr(state(app).accounts, "verify", lambda username, _password: verified.append(username))
    # Up to a thousand fields of a megabyte each would otherwise be parsed into memory, per request.
    fields = {"username": "tax.requester", "password": "x", **{f"f{i}": "y" * 4096 for i in range(limit // 4096 + 1)}}
    refused = anonymous.post("/login", data=fields)
    assert refused.status_code == 413
    assert f"larger than {limit} bytes" in refused.text
    assert refused.headers["x-frame-options"] == "DENY"
    assert verified == []
    assert anonymous.post("/login", data={"username": "tax.requester", "password": "x"}).status_code == 401


def test_sign_ins_checked_at_once_count_against_the_limit_before_their_passwords_are_checked(
    portal_app: tuple[FastAPI, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = portal_app
    first, others = client(None), client(None)
    accounts = state(app).accounts
    verify = accounts.verify
    checked: list[str] = []

    def slow_verify(username: str, password: str) -> Account | None:
        # While the first guess's password is being checked (argon2 takes a while), more guesses arrive.
        checked.append(password)
        if len(checked) == 1:
            answers = [others.post("/login", data={"username": "tax.requester", "password": f"g{i}"}) for i in range(6)]
            assert [a.status_code for a in answers].count(429) == 2
        return verify(username, password)

    monkeypatch.setattr(accounts, "verify", slow_verify)
    assert first.post("/login", data={"username": "tax.requester", "password": "g"}).status_code == 401
    # At most signin_max_failures (5) passwords checked per name in the window, however they overlap.
    assert len(checked) == 5


def test_a_form_without_the_session_csrf_token_changes_nothing(portal_app: tuple[FastAPI, Client]) -> None:
    app, client = portal_app
    tax = client("tax.requester")
    form = {"data_class": PENALTY, "consumer": "tax-levy", "purpose": "p", "scenario": "s", "action": "submit"}
    assert tax.post("/apply", data=form).status_code == 403
    assert tax.post("/apply", data={**form, "csrf_token": "forged"}).status_code == 403
    assert grants_log(app).log == {}
    # Nor does a token of another session work.
    other = client("psb.requester")
    token = csrf_of(other.get("/apply", params={"data_class": PENALTY}).text)
    assert tax.post("/apply", data={**form, "csrf_token": token}).status_code == 403


def test_a_csrf_token_that_is_not_ascii_is_refused_as_a_bad_form_not_an_error(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax = client("tax.requester")
    form = {"data_class": PENALTY, "consumer": "tax-levy", "purpose": "p", "scenario": "s", "action": "submit"}
    for token in ("\u00e9", "\u4e2d\u6587", "\U0001f600"):
        refused = tax.post("/apply", data={**form, "csrf_token": token})
        assert refused.status_code == 403
        assert "did not come from this portal" in refused.text
        assert tax.post("/logout", data={"csrf_token": token}).status_code == 403
    assert grants_log(app).log == {}
    assert tax.get("/grants").status_code == 200  # still signed in


@pytest.mark.parametrize("days", ["nan", "NaN", "-nan", "inf", "-1", "36501", "ten"])
def test_a_validity_that_is_not_a_number_of_days_is_refused_on_apply_and_on_approval(
    portal_app: tuple[FastAPI, Client], days: str
) -> None:
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    page = tax.get("/apply", params={"data_class": PENALTY})
    form = {
        "csrf_token": csrf_of(page.text),
        "data_class": PENALTY,
        "consumer": "tax-levy",
        "fields": ["uscc", "seq"],
        "purpose": "p",
        "scenario": "s",
        "valid_days": days,
        "action": "submit",
    }
    refused = tax.post("/apply", data=form)
    assert refused.status_code == 422
    assert "the validity must be" in refused.text
    assert grants_log(app).log == {}
    grant_id = apply_for_penalty(tax)
    decision = amr.get(f"/departments/AMR/inbox/{grant_id}")
    approve = {"csrf_token": csrf_of(decision.text), "fields": ["uscc"], "valid_days": days, "action": "approve"}
    answered = amr.post(f"/departments/AMR/inbox/{grant_id}", data=approve)
    assert answered.status_code == 409
    assert "the validity must be" in answered.text
    assert grants_log(app).log[grant_id].state is GrantState.APPLIED


def test_apply_previews_masking_then_the_provider_approves_with_a_field_masked_and_revokes(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    page = tax.get("/apply", params={"data_class": PENALTY})
    preview = tax.post(
        "/apply",
        data={
            "csrf_token": csrf_of(page.text),
            "data_class": PENALTY,
            "consumer": "tax-levy",
            "fields": ["uscc", "person_id_number"],
            "masked": ["person_id_number"],
            "action": "preview",
        },
    )
    assert preview.status_code == 200
    assert re.search(r'id="outcome-person_id_number">masked[^<]*110105\*{8}1234', preview.text)
    assert re.search(r'id="outcome-seq">not requested', preview.text)
    assert grants_log(app).log == {}

    grant_id = apply_for_penalty(tax)
    inbox = amr.get("/departments/AMR/inbox")
    assert inbox.status_code == 200
    assert f'id="open-{grant_id}"' in inbox.text
    decision = amr.get(f"/departments/AMR/inbox/{grant_id}")
    approved = amr.post(
        f"/departments/AMR/inbox/{grant_id}",
        data={
            "csrf_token": csrf_of(decision.text),
            "fields": ["uscc", "person_id_number"],
            "masked": ["person_id_number"],
            "action": "approve",
        },
    )
    assert approved.status_code == 303, approved.text
    grant = grants_log(app).log[grant_id]
    assert grant.state is GrantState.APPROVED
    assert grant.fields == ("uscc", "person_id_number")
    assert grant.masked_fields == ("person_id_number",)
    assert grant.requester == "tax.requester"

    mine = tax.get("/grants")
    assert grant_id in mine.text
    # The consumer cannot revoke; the provider's approver can, with a reason.
    detail = tax.get(f"/grants/{grant_id}")
    assert 'id="revoke-form"' not in detail.text
    refused = tax.post(f"/grants/{grant_id}/revoke", data={"csrf_token": csrf_of(detail.text), "reason": "r"})
    assert refused.status_code == 403
    page = amr.get(f"/grants/{grant_id}")
    revoked = amr.post(f"/grants/{grant_id}/revoke", data={"csrf_token": csrf_of(page.text), "reason": "audit finding"})
    assert revoked.status_code == 303
    assert grants_log(app).log[grant_id].state is GrantState.REVOKED
    history = amr.get(f"/grants/{grant_id}").text
    assert history.count("<tr><td>") == 3  # applied, approved, revoked
    assert audit_reasons(app) == ["not_provider_approver"]


def test_the_requester_cannot_open_the_providers_inbox_nor_decide_and_every_refusal_is_audited(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax = client("tax.requester")
    grant_id = apply_for_penalty(tax)
    inbox = tax.get("/departments/AMR/inbox")
    assert inbox.status_code == 403
    assert "only approvers of AMR" in inbox.text
    assert tax.get(f"/departments/AMR/inbox/{grant_id}").status_code == 403
    # Its own department's inbox needs the approver role too.
    assert tax.get("/departments/TAX/inbox").status_code == 403
    assert tax.get("/bureau").status_code == 403
    assert tax.get("/data/feed/amr-reg").status_code == 403
    assert audit_reasons(app) == [
        "not_provider_approver",
        "not_provider_approver",
        "not_provider_approver",
        "not_operator",
        "not_own_system",
    ]
    assert grants_log(app).log[grant_id].state is GrantState.APPLIED


def test_four_eyes_whoever_applied_cannot_decide_even_as_an_approver_of_the_provider(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    amr = client("amr.approver")
    # An application made in amr.approver's name (e.g. through the gateway's requester field).
    grant = grants_log(app).apply(
        department="TAX",
        requester="amr.approver",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="p",
        scenario="s",
    )
    page = amr.get(f"/departments/AMR/inbox/{grant.grant_id}")
    assert page.status_code == 403
    assert "four eyes" in page.text
    assert audit_reasons(app) == ["four_eyes"]
    other = client("amr.both")
    decision = other.get(f"/departments/AMR/inbox/{grant.grant_id}")
    assert decision.status_code == 200
    rejected = other.post(
        f"/departments/AMR/inbox/{grant.grant_id}",
        data={"csrf_token": csrf_of(decision.text), "action": "reject", "reason": "no legal basis shown"},
    )
    assert rejected.status_code == 303
    assert grants_log(app).log[grant.grant_id].state is GrantState.REJECTED


def test_an_application_whose_class_left_the_catalogue_shows_why_and_approving_it_is_refused(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax, amr = client("tax.requester"), client("amr.approver")
    grant_id = apply_for_penalty(tax)
    # The portal restarted with a catalogue the class has left; the application is still in the log.
    catalogue = state(app).catalogue
    gone = dataclasses.replace(
        catalogue, data_classes={c: e for c, e in catalogue.data_classes.items() if c != PENALTY}
    )
    state(app).catalogue = gone
    grants_log(app).catalogue = gone
    decision = amr.get(f"/departments/AMR/inbox/{grant_id}")
    assert decision.status_code == 200
    assert 'id="class-gone"' in decision.text
    assert 'id="approve-button"' not in decision.text
    assert amr.get(f"/grants/{grant_id}").status_code == 200
    # Approving anyway (an old form, a crafted post) is refused with the reason, and nothing is signed.
    approve = {"csrf_token": csrf_of(decision.text), "fields": ["uscc"], "action": "approve"}
    answered = amr.post(f"/departments/AMR/inbox/{grant_id}", data=approve)
    assert answered.status_code == 409
    assert "no longer in the catalogue" in answered.text
    assert grants_log(app).log[grant_id].state is GrantState.APPLIED
    reject = {"csrf_token": csrf_of(decision.text), "action": "reject", "reason": "class withdrawn"}
    assert amr.post(f"/departments/AMR/inbox/{grant_id}", data=reject).status_code == 303
    assert grants_log(app).log[grant_id].state is GrantState.REJECTED


def test_grants_of_other_departments_are_invisible_and_the_bureau_sees_all(portal_app: tuple[FastAPI, Client]) -> None:
    _app, client = portal_app
    grant_id = apply_for_penalty(client("tax.requester"))
    psb = client("psb.requester")
    assert psb.get(f"/grants/{grant_id}").status_code == 404
    assert grant_id not in psb.get("/grants").text
    bureau = client("bureau")
    assert grant_id in bureau.get("/grants").text
    page = bureau.get("/bureau")
    assert page.status_code == 200
    assert "Audit chain" in page.text


def test_a_grant_recorded_with_a_former_provider_is_the_current_providers_not_the_former_ones(
    portal_app: tuple[FastAPI, Client],
) -> None:
    """The catalogue moved the class to another department after the grant was applied for (a
    reorganisation): the portal follows the log's recorded parties only as the catalogue has them now,
    as the gateway does, so the former provider neither sees nor decides, and the current one does."""
    app, client = portal_app
    tax, psb, amr = client("tax.requester"), client("psb.requester"), client("amr.approver")
    applied = grants_log(app).log[apply_for_penalty(tax)]
    # The same application, as the log recorded it when PSB still provided the class.
    recorded = applied.model_copy(update={"grant_id": "g-formerpsb0001", "provider": "PSB"})
    grants_log(app).log[recorded.grant_id] = recorded
    state(app).view.put(recorded)
    assert psb.get(f"/grants/{recorded.grant_id}").status_code == 404
    assert recorded.grant_id not in psb.get("/grants").text
    decision = amr.get(f"/departments/AMR/inbox/{recorded.grant_id}")
    assert decision.status_code == 200
    approve = {"csrf_token": csrf_of(decision.text), "fields": ["uscc"], "action": "approve"}
    assert amr.post(f"/departments/AMR/inbox/{recorded.grant_id}", data=approve).status_code == 303
    assert grants_log(app).log[recorded.grant_id].state is GrantState.APPROVED


def test_catalogue_filters_and_the_class_page_marks_sensitive_fields(portal_app: tuple[FastAPI, Client]) -> None:
    _app, client = portal_app
    tax = client("tax.requester")
    listing = tax.get("/catalogue", params={"share_type": "conditional"})
    codes = set(re.findall(r'href="/catalogue/([0-9/]+)"', listing.text))
    assert codes == {"301001002/000001", "301001005/000001"}
    periodic = tax.get("/catalogue", params={"update_mode": "periodic", "q": "roster"})
    assert set(re.findall(r'href="/catalogue/([0-9/]+)"', periodic.text)) == {"301001005/000001"}
    page = tax.get(f"/catalogue/{PENALTY}")
    assert 'id="sensitive-person_id_number"' in page.text
    assert "《重庆市政务数据资源管理暂行办法》第二十四条" in page.text
    assert "tax-levy" in page.text
    assert tax.get("/catalogue/999/1").status_code == 404


def test_the_disputes_page_lists_only_the_disputes_a_department_is_a_party_to(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    tax, psb, bureau = client("tax.requester"), client("psb.requester"), client("bureau")
    assert 'id="disputes-empty"' in tax.get("/disputes").text
    state(app).disputes.put(
        {
            "type": "opened",
            "dispute_id": "d-1",
            "record_id": "r-1",
            "data_class": PENALTY,
            "provider": "AMR",
            "consumer": "tax-levy",
            "consumer_department": "TAX",
            "fields": ["amount"],
            "reason": "amount wrong",
            "deadline": "2099-01-01T00:00:00+00:00",
        }
    )
    assert "d-1" in tax.get("/disputes").text
    assert "d-1" not in psb.get("/disputes").text
    assert "d-1" in bureau.get("/disputes").text


def test_a_dispute_recorded_with_a_former_provider_is_listed_to_the_current_one_only(
    portal_app: tuple[FastAPI, Client],
) -> None:
    """As for grants: the class moved to AMR after the record was delivered (and disputed) under PSB."""
    app, client = portal_app
    psb, amr = client("psb.requester"), client("amr.approver")
    state(app).disputes.put(
        {
            "type": "opened",
            "dispute_id": "d-formerpsb",
            "record_id": "r-1",
            "data_class": PENALTY,
            "provider": "PSB",
            "consumer": "tax-levy",
            "consumer_department": "TAX",
            "fields": ["amount"],
            "reason": "amount wrong",
            "deadline": "2099-01-01T00:00:00+00:00",
        }
    )
    assert "d-formerpsb" not in psb.get("/disputes").text
    assert "d-formerpsb" in amr.get("/disputes").text


def test_the_assessment_is_the_bureaus_with_the_report_to_download(portal_app: tuple[FastAPI, Client]) -> None:
    _app, client = portal_app
    tax, bureau = client("tax.requester"), client("bureau")
    assert tax.get("/assessment").status_code == 403
    assert tax.get("/assessment/report.xlsx", params={"period": "2026-Q3"}).status_code == 403
    page = bureau.get("/assessment", params={"period": "2026-Q3"})
    assert page.status_code == 200
    assert 'id="ranking"' in page.text
    assert 'id="chart-' in page.text  # the report's charts, inline
    html = bureau.get("/assessment/report.html", params={"period": "2026-Q3"})
    assert html.status_code == 200
    assert "report-2026-Q3.html" in html.headers["content-disposition"]
    assert "<svg" in html.text or "data:image/svg+xml" in html.text
    xlsx = bureau.get("/assessment/report.xlsx", params={"period": "2026-Q3"})
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"  # a zip: the workbook
    wrong = bureau.get("/assessment", params={"period": "2026-13"})
    assert wrong.status_code == 200
    assert 'id="assessment-problem"' in wrong.text
    assert "no month 13" in wrong.text


def test_overdue_applications_come_first_in_the_inbox_and_show_on_the_bureau_page(
    portal_app: tuple[FastAPI, Client],
) -> None:
    app, client = portal_app
    amr, bureau = client("amr.approver"), client("bureau")
    log = grants_log(app)
    fresh = log.apply(
        department="TAX", requester="t", consumer="tax-levy", data_class=PENALTY, purpose="p", scenario="s"
    )
    old = fresh.model_copy(update={"grant_id": "g-old", "applied_at": fresh.applied_at - dt.timedelta(days=30)})
    log._write(old)
    inbox = amr.get("/departments/AMR/inbox").text
    assert inbox.index('id="open-g-old"') < inbox.index(f'id="open-{fresh.grant_id}"')
    assert re.search(r'<tr class="overdue">\s*<td><a href="/departments/AMR/inbox/g-old"', inbox)
    page = bureau.get("/bureau").text
    overdue = page[page.index('id="overdue"') :]
    assert "g-old" in overdue
    assert fresh.grant_id not in overdue
