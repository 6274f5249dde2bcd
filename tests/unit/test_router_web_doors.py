"""The router's web server: /metrics and every other path answer only the scrape token, /healthz and
/readyz stay open, and none of Faust's own views (/router, /table, /stats, /graph, ...) is served."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from sharebus_core.scrape_auth import UNAUTHORIZED_BODY, ScrapeToken
from sharebus_router.faust_sensor import (
    FAUST_VIEWS_OFF,
    FaustViewsEnabled,
    check_faust_views_off,
    install_sensor,
    scrape_guard,
)

TOKEN = ScrapeToken(SecretStr("r" * 43))


def _app(**settings: Any) -> faust.App:
    app = faust.App(
        "sharebus-test-router-web",
        broker="kafka://127.0.0.1:1",
        store="memory://",
        web_enabled=True,
        **settings,
        web_application_options={"middlewares": [scrape_guard(TOKEN)]},
    )
    app.Table("periods", default=int)
    return app


def _served(app: faust.App, registry: CollectorRegistry) -> dict[tuple[str, str], tuple[int, bytes]]:
    """Each (path, who) as the router's aiohttp application answers it."""

    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        return view.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(view: View, request: Request) -> Response:
        return view.json({"ready": True})

    install_sensor(app, registry)
    app.web.init_server()  # what the worker does when it starts: Faust's blueprints are applied here
    paths = ["/metrics", "/healthz", "/readyz", "/", "/router/", "/table/", "/table/periods/", "/stats/"]
    paths += ["/graph/", "/assignment/", "/performance/", "/nothing"]

    async def ask() -> dict[tuple[str, str], tuple[int, bytes]]:
        answers = {}
        async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
            for path in paths:
                for who, headers in (("anonymous", {}), ("wrong", {"Authorization": "Bearer " + "x" * 43})):
                    response = await client.get(path, headers=headers)
                    answers[path, who] = (response.status, await response.read())
                response = await client.get(path, headers=TOKEN.headers)
                answers[path, "holder"] = (response.status, await response.read())
        return answers

    return asyncio.run(ask())


def test_only_the_probes_are_open_and_faust_views_are_not_served() -> None:
    registry = CollectorRegistry()
    Counter("router_test_calls", "calls", ["data_class"], registry=registry).labels("301001001/000001").inc()
    answers = _served(_app(**FAUST_VIEWS_OFF), registry)
    for who in ("anonymous", "wrong"):
        assert answers["/metrics", who] == (401, UNAUTHORIZED_BODY)
        assert answers["/healthz", who][0] == 200
        assert answers["/readyz", who][0] == 200
        for path in ("/", "/router/", "/table/", "/table/periods/", "/stats/", "/graph/", "/nothing"):
            assert answers[path, who] == (401, UNAUTHORIZED_BODY), path
    status, body = answers["/metrics", "holder"]
    assert status == 200
    assert b'router_test_calls_total{data_class="301001001/000001"} 1.0' in body
    # Not even the token opens Faust's views: they are not there (but Faust's empty index on /).
    assert answers["/", "holder"] == (200, b'{"status":"OK"}')
    for path in ("/router/", "/table/", "/table/periods/", "/stats/", "/graph/", "/assignment/", "/performance/"):
        assert answers[path, "holder"][0] == 404, path


def test_faust_serves_its_views_by_default_which_is_why_they_are_turned_off() -> None:
    """Without FAUST_VIEWS_OFF, Faust serves /router and /table (the table's keys) to a holder of the
    token: the settings are what keeps them off, and the guard what keeps strangers out meanwhile."""
    answers = _served(_app(), CollectorRegistry())
    assert answers["/table/", "holder"][0] == 200
    assert answers["/router/", "holder"][0] == 200
    assert answers["/table/", "anonymous"] == (401, UNAUTHORIZED_BODY)


def test_a_faust_view_switched_on_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust takes APP_WEB_*_ENABLED over the app's own settings.
    monkeypatch.setenv("APP_WEB_TABLES_ENABLED", "1")
    app = _app(**FAUST_VIEWS_OFF)
    with pytest.raises(FaustViewsEnabled, match="APP_WEB_TABLES_ENABLED"):
        check_faust_views_off(app)
    monkeypatch.delenv("APP_WEB_TABLES_ENABLED")
    check_faust_views_off(_app(**FAUST_VIEWS_OFF))
