"""The portal's /metrics and probes are doors like every service's (docs/security.md): the metrics only to the
bus's scrape token, readiness to anyone, its detail only to the token's holders."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from sharebus_core.catalogue import load_catalogue
from sharebus_core.scrape_auth import UNAUTHORIZED_BODY
from sharebus_portal.app import create_app
from sharebus_portal.settings import PortalSettings
from tests.support.portal import add_officials, memory_portal

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"


def test_only_the_scrape_token_opens_the_portals_metrics_and_probe_detail(tmp_path: Path) -> None:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    add_officials(catalogue, tmp_path / "accounts.json")
    settings = PortalSettings(
        namespace="unit", catalogue_dir=FIXTURE_CATALOGUE, accounts_file=tmp_path / "accounts.json"
    )
    with TestClient(create_app(settings, catalogue, build=memory_portal), base_url="https://testserver") as client:
        for headers in ({}, {"Authorization": "Bearer " + "w" * 43}):
            refused = client.get("/metrics", headers=headers)
            assert (refused.status_code, refused.content) == (401, UNAUTHORIZED_BODY)
            assert client.get("/readyz", headers=headers).json() == {"ready": True}
        token = settings.scrape_auth().headers
        # A sign-in from another site is refused before any password check, and counted.
        login = {"username": "someone", "password": "x", "next": "/catalogue"}
        assert client.post("/login", data=login, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        metrics = client.get("/metrics", headers=token)
        assert metrics.status_code == 200
        assert 'sharebus_portal_signin_refusals_total{reason="cross_site"} 1.0' in metrics.text
        assert client.get("/readyz", headers=token).json() == {
            "ready": True,
            "grants_caught_up": True,
            "previews_open": 0,
        }
