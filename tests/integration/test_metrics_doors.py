"""Every door checks who is knocking, the probe and metrics doors too (docs/security.md).

On the real broker: the router's /metrics (whole or a part), the monitor's and the gateway's answer
401 and one line without the bus's scrape token (a wrong one, or a system's API key, is no better), and
the series with it; none of Faust's own views (/router, /table: the periods table, /stats, /graph) is
served, with the token or without; /healthz and /readyz stay open to orchestrators but tell a stranger
only whether the process is ready.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sharebus_core.scrape_auth import UNAUTHORIZED_BODY
from tests.integration.conftest import FIXTURE_CATALOGUE, GatewayBus
from tests.support.monitor import start_monitor
from tests.support.scrape import scraped

STRANGERS: dict[str, dict[str, str]] = {
    "anonymous": {},
    "wrong token": {"Authorization": "Bearer " + "w" * 43},
    "basic": {"Authorization": "Basic c2hhcmVidXM6c2hhcmVidXM="},
}
FAUST_VIEWS = ["/router/", "/table/", "/table/periods/", "/stats/", "/graph/", "/assignment/", "/performance/"]


def _refused(response: httpx.Response) -> bool:
    return response.status_code == 401 and response.content == UNAUTHORIZED_BODY


@pytest.mark.timeout(400)
def test_only_the_scrape_token_opens_metrics_and_faust_views_are_not_served(
    gateway_bus: GatewayBus, tmp_path: Path
) -> None:
    bus = gateway_bus.bus
    router = bus.router.base_url
    for who, headers in STRANGERS.items():
        assert _refused(httpx.get(f"{router}/metrics", headers=headers, timeout=10)), who
        shard = httpx.get(f"{router}/metrics", params={"shard": 0, "shards": 2}, headers=headers, timeout=10)
        assert _refused(shard), who
        for path in FAUST_VIEWS:
            assert _refused(httpx.get(f"{router}{path}", headers=headers, timeout=10)), (who, path)
        # Open to an orchestrator, but only whether it is ready: no class, partition or clock.
        ready = httpx.get(f"{router}/readyz", headers=headers, timeout=10)
        assert (ready.status_code, ready.json()) == (200, {"ready": True}), who
        assert httpx.get(f"{router}/healthz", headers=headers, timeout=10).json() == {"status": "ok"}

    whole = scraped(f"{router}/metrics")
    assert whole.status_code == 200
    assert "sharebus_records_received_total" in whole.text
    part = scraped(f"{router}/metrics", params={"shard": 1, "shards": 2})
    assert part.status_code == 200
    detail = scraped(f"{router}/readyz").json()
    assert detail["ready"] is True
    assert {"routes_closed", "held_partitions", "clock"} <= set(detail)
    # Not even the token opens Faust's views: they are not served at all.
    for path in FAUST_VIEWS:
        assert scraped(f"{router}{path}").status_code == 404, path

    gateway = gateway_bus.gateway.base_url
    api_key = {"Authorization": f"Bearer {next(iter(gateway_bus.tokens.values()))}"}
    for who, headers in {**STRANGERS, "a system's API key": api_key}.items():
        assert _refused(httpx.get(f"{gateway}/metrics", headers=headers, timeout=10)), who
    assert "sharebus_gateway" in scraped(f"{gateway}/metrics").text
    assert httpx.get(f"{gateway}/readyz", timeout=10).status_code == 200

    # One more process, whose /metrics is the shared probe server's (the auditor's, the reconciler's too).
    monitor, port = start_monitor(bus.services["monitor"], bus.namespace, FIXTURE_CATALOGUE, tmp_path)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        for who, headers in STRANGERS.items():
            assert _refused(httpx.get(url, headers=headers, timeout=10)), who
        assert "sharebus_catalogue_data_class_info{" in scraped(url).text
    finally:
        monitor.stop()
