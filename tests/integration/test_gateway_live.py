"""The gateway end to end on the real broker: publish over HTTP, receive over SSE and WebSocket with exactly
the granted fields, resume with Last-Event-ID, slow clients, batches."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from websockets.sync.client import connect

from tests.integration.conftest import GatewayBus
from tests.support.gateway import read_sse
from tests.support.kafka import end_offsets, eventually, metric
from tests.support.records import ENTERPRISE, penalty
from tests.support.scrape import scraped

PENALTY = "301001002/000001"  # conditional, provider AMR, subscribed by tax-levy


def enterprise_json(seq: int, name: str = "n") -> dict[str, Any]:
    return {
        "uscc": f"U{seq}",
        "name": name,
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": "2020-01-01",
        "seq": seq,
    }


def publish(gb: GatewayBus, code: str, records: list[dict[str, Any]]) -> None:
    with gb.client("amr-reg") as amr:
        response = amr.post(f"/v1/classes/{code}/records", json=records)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records)


def grant_penalty(gb: GatewayBus) -> str:
    """TAX applies over HTTP for uscc, person_id_number (masked) and seq; AMR approves over HTTP."""
    with gb.client("tax-levy") as tax, gb.client("amr-reg") as amr:
        applied = tax.post(
            "/v1/grants",
            json={
                "consumer": "tax-levy",
                "data_class": PENALTY,
                "purpose": "tax credit rating",
                "scenario": "annual rating",
                "fields": ["uscc", "person_id_number", "seq"],
                "masked_fields": ["person_id_number"],
            },
        )
        assert applied.status_code == 201, applied.text
        grant_id = str(applied.json()["grant"]["grant_id"])
        approved = amr.post(f"/v1/grants/{grant_id}/approve", json={"valid_days": 30})
        assert approved.status_code == 200, approved.text
        assert approved.json()["effective_state"] == "approved"

    def routed() -> int:
        return int(scraped(f"{gb.bus.router.base_url}/readyz").json()["grant_events_routed"])

    assert eventually(routed, lambda n: n >= 2, timeout_s=30) >= 2
    return grant_id


def test_http_publish_reaches_only_the_granted_fields_over_sse_and_websocket(
    gateway_bus: GatewayBus,
) -> None:
    gb = gateway_bus
    grant_id = grant_penalty(gb)
    publish(gb, PENALTY, [penalty(seq) for seq in range(5)])

    expected = {
        seq: {"uscc": penalty(seq)["uscc"], "person_id_number": "110105********002X", "seq": seq} for seq in range(5)
    }
    with gb.client("tax-levy") as tax:
        events = read_sse(tax, "/v1/systems/tax-levy/feed", 5)
    assert [e.event for e in events] == ["delivery"] * 5
    assert {e.data["value"]["seq"]: e.data["value"] for e in events} == expected
    assert {e.data["grant_id"] for e in events} == {grant_id}
    assert {e.data["data_class"] for e in events} == {PENALTY}

    url = gb.gateway.base_url.replace("http://", "ws://") + "/v1/systems/tax-levy/feed/ws"
    with connect(url, additional_headers={"Authorization": f"Bearer {gb.tokens['tax-levy']}"}) as ws:
        messages = [json.loads(ws.recv(timeout=20)) for _ in range(5)]
    assert {m["delivery"]["value"]["seq"]: m["delivery"]["value"] for m in messages} == expected
    # The same end position on both transports (partitions may interleave differently on the way).
    assert messages[-1]["id"] == events[-1].id

    # psb-case has no grant (and no subscription) for penalties: its feed stays empty.
    assert end_offsets(gb.bus.access, gb.bus.topics.delivery("psb-case")) == 0
    with gb.client("psb-case") as psb:
        assert read_sse(psb, "/v1/systems/psb-case/feed", 1, timeout_s=3) == []
    assert metric(f"{gb.gateway.base_url}/metrics", "sharebus_gateway_records_published_total", data_class=PENALTY) == 5


def test_last_event_id_resumes_with_no_loss_and_no_repeat(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    publish(gb, ENTERPRISE, [enterprise_json(seq) for seq in range(10)])
    path = "/v1/systems/tax-levy/feed"
    with gb.client("tax-levy") as tax:
        first = read_sse(tax, path, 4)
        assert len(first) == 4
        publish(gb, ENTERPRISE, [enterprise_json(seq) for seq in range(10, 20)])
        last_id = first[-1].id
        assert last_id is not None
        rest = read_sse(tax, path, 16, headers={"Last-Event-ID": last_id})
        # An explicit position gives the same resumption (WebSocket clients and plain HTTP tools use it).
        again = read_sse(tax, path, 16, params={"from": last_id})
        # Nothing beyond the 16: the stream goes quiet rather than repeating.
        extra = read_sse(tax, path, 1, timeout_s=3, headers={"Last-Event-ID": rest[-1].id or ""})
    seqs = [e.data["value"]["seq"] for e in first + rest]
    assert sorted(seqs) == list(range(20))
    # Partitions interleave differently from one read to the next; the records and the end position do not.
    assert sorted(e.data["value"]["seq"] for e in again) == sorted(e.data["value"]["seq"] for e in rest)
    assert again[-1].id == rest[-1].id
    assert extra == []
    # Dates come back as they were sent.
    assert {e.data["value"]["established"] for e in first + rest} == {"2020-01-01"}


def test_a_client_that_stops_reading_is_disconnected_and_memory_stays_bounded(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    host, port = gb.gateway.base_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A tiny receive window: the gateway's writes back up after a few events.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect((host, int(port)))
    request = (
        f"GET /v1/systems/tax-levy/feed HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {gb.tokens['tax-levy']}\r\nAccept: text/event-stream\r\n\r\n"
    )
    sock.sendall(request.encode())
    # ~9 MB of events: more than the kernel's socket buffers (4 MB at most here) can absorb.
    long_name = "n" * 3000
    # In batches of 250 (~0.8 MB each): the gateway refuses request bodies over 1 MiB.
    for start in range(0, 3000, 250):
        publish(gb, ENTERPRISE, [enterprise_json(seq, long_name) for seq in range(start, start + 250)])
    metrics_url = f"{gb.gateway.base_url}/metrics"
    disconnects = eventually(
        lambda: metric(metrics_url, "sharebus_gateway_feed_disconnects_total", reason="slow_client"),
        lambda n: n >= 1,
        timeout_s=60,
    )
    assert disconnects == 1
    # The gateway has ended the connection: reading now drains what was buffered, then EOF.
    sock.settimeout(10)
    received = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    sock.close()
    assert received.count(b"event: delivery") < 3000
    assert eventually(lambda: metric(metrics_url, "sharebus_gateway_feed_connections"), lambda n: n == 0) == 0
