"""Periodic batches over HTTP: released by the router, listed and fetched whole through the gateway."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import FIXTURE_CATALOGUE, ClockedBus
from tests.support.gateway import GatewayProcess, issue_key, start_gateway
from tests.support.kafka import eventually, metric

STATS = "301001004/000001"  # daily, unconditional; hrss-si subscribes


@pytest.fixture
def gateway(clocked: ClockedBus, tmp_path: Path) -> Iterator[GatewayProcess]:
    bus = clocked.bus
    process = start_gateway(
        bus.services["gateway"], bus.namespace, bus.registry_url, FIXTURE_CATALOGUE, tmp_path / "gw"
    )
    try:
        yield process
    finally:
        process.stop()


def client(gateway: GatewayProcess, clocked: ClockedBus, system: str) -> httpx.Client:
    bus = clocked.bus
    token = issue_key(bus.catalogue, bus.access, bus.topics.api_keys, system)
    http = gateway.client(token)
    # Keys reach the gateway through its follower of the keys topic.
    assert eventually(lambda: http.get("/v1/catalogue/share-types").status_code, lambda c: c == 200, 20) == 200
    return http


def test_a_released_batch_is_listed_and_fetched_whole_over_http(clocked: ClockedBus, gateway: GatewayProcess) -> None:
    bus = clocked.bus
    daily = clocked.window(STATS)
    records = [{"district_code": "500103", "issued": seq, "seq": seq} for seq in range(5)]
    amr = client(gateway, clocked, "amr-reg")
    response = amr.post(f"/v1/classes/{STATS}/records", json=records)
    amr.close()
    assert response.status_code == 200, response.text
    url = bus.router.metrics_url
    assert eventually(lambda: metric(url, "sharebus_records_received_total", data_class=STATS), lambda v: v >= 5) == 5
    clocked.move_clock_past(daily.end)

    hrss, psb = client(gateway, clocked, "hrss-si"), client(gateway, clocked, "psb-case")
    try:

        def complete() -> list[dict[str, Any]]:
            listed = hrss.get("/v1/systems/hrss-si/batches")
            assert listed.status_code == 200, listed.text
            return [b for b in listed.json() if b["complete"]]

        batches = eventually(complete, lambda found: len(found) == 1, 60)
        assert len(batches) == 1
        batch = batches[0]
        assert (batch["data_class"], batch["count"]) == (STATS, 5)
        assert dt.datetime.fromisoformat(batch["period_end"]) == daily.end
        fetched = hrss.get(f"/v1/systems/hrss-si/batches/{batch['batch_id']}")
        assert fetched.status_code == 200, fetched.text
        lines = [json.loads(line) for line in fetched.text.splitlines()]
        assert len(lines) == 5
        assert [line["seq"] for line in lines] == list(range(5))  # in batch order
        assert sorted(line["value"]["seq"] for line in lines) == list(range(5))
        assert all(set(line["value"]) == {"district_code", "issued", "seq"} for line in lines)
        # Another system may not read hrss-si's batches.
        assert psb.get("/v1/systems/hrss-si/batches").status_code == 403
    finally:
        hrss.close()
        psb.close()
