"""An account whose department has left the catalogue (merged, renamed) after it was added: every page is a
clear, audited 403 that says so, never a 500, and nothing can be applied for or decided."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharebus_core.catalogue import load_catalogue
from sharebus_portal.accounts import Account, Role
from sharebus_portal.app import create_app
from sharebus_portal.settings import PortalSettings
from tests.support.portal import PASSWORD, MemoryAudit, MemoryGrants, add_officials, csrf_of, memory_portal

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"
PENALTY = "301001002/000001"  # conditional, AMR


@pytest.fixture
def gone(tmp_path: Path) -> Iterator[tuple[FastAPI, TestClient]]:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    store = add_officials(catalogue, tmp_path / "accounts.json")
    template = store.get("amr.both")
    assert template is not None
    # Written as the file would read after the catalogue dropped OLD: no check against today's catalogue.
    store.put(
        Account(
            username="old.official",
            department="OLD",
            roles=(Role.REQUESTER, Role.APPROVER),
            password_hash=template.password_hash,
        )
    )
    settings = PortalSettings(
        namespace="unit", catalogue_dir=FIXTURE_CATALOGUE, accounts_file=tmp_path / "accounts.json"
    )
    app = create_app(settings, catalogue, build=memory_portal)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        signed = client.post("/login", data={"username": "old.official", "password": PASSWORD, "next": "/catalogue"})
        assert signed.status_code == 303, signed.text
        yield app, client


def test_every_page_is_a_clear_audited_403_and_nothing_is_applied_for(gone: tuple[FastAPI, TestClient]) -> None:
    app, client = gone
    for path in ("/apply", f"/apply?data_class={PENALTY}", "/data", "/catalogue", "/grants", "/inbox"):
        page = client.get(path)
        assert page.status_code == 403, (path, page.status_code)
        assert "OLD is no longer in the catalogue" in page.text, path
        assert "bureau" in page.text, path
    audit = app.state.portal.audit
    assert isinstance(audit, MemoryAudit)
    assert audit.facts
    assert {f.decisions[0].reason for f in audit.facts} == {"department_not_in_catalogue"}
    # The token is in the 403 page's sign-out form: a forged apply is refused the same way.
    token = csrf_of(client.get("/catalogue").text)
    form = {
        "csrf_token": token,
        "data_class": PENALTY,
        "consumer": "tax-levy",
        "fields": ["uscc"],
        "purpose": "p",
        "scenario": "s",
        "valid_days": "30",
        "action": "submit",
    }
    assert client.post("/apply", data=form).status_code == 403
    grants = app.state.portal.grants
    assert isinstance(grants, MemoryGrants)
    assert grants.log == {}
    # Signing out still works.
    assert client.post("/logout", data={"csrf_token": token}).headers["location"] == "/login"
