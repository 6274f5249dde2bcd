"""Who may do what over the gateway: each rule with its own test. Refusals are 403 with no data and
an audit fact; unknown callers 401; grants another department cannot see are 404."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sharebus_cli.main import main as cli
from sharebus_gateway.keys import KeyStore
from tests.integration.conftest import GatewayBus
from tests.support.kafka import end_offsets, eventually, read_all
from tests.support.keys import control_keys, keys_in_env
from tests.support.records import ENTERPRISE

PENALTY = "301001002/000001"


def forbidden_facts(gb: GatewayBus, expected: int) -> list[dict[str, Any]]:
    messages = read_all(gb.bus.access, gb.bus.topics.audit_facts, expected, timeout_s=20)
    facts = [fact for m in messages for fact in json.loads(m.value() or b"{}")["records"]]
    return [f for f in facts if f.get("mode") == "gateway"]


def assert_audited_refusal(gb: GatewayBus, response: httpx.Response, action: str, system: str) -> None:
    assert response.status_code == 403
    assert set(response.json()) == {"detail"}  # no data, only the reason
    facts = forbidden_facts(gb, 1)
    assert [(f["action"], f["decisions"][0]["consumer"], f["decisions"][0]["decision"]) for f in facts] == [
        (action, system, "forbidden")
    ]


def apply_penalty(gb: GatewayBus) -> str:
    with gb.client("tax-levy") as tax:
        response = tax.post(
            "/v1/grants",
            json={"consumer": "tax-levy", "data_class": PENALTY, "purpose": "rating", "scenario": "annual"},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["grant"]["grant_id"])


def test_no_key_or_an_unknown_key_is_401(gateway_bus: GatewayBus) -> None:
    with gateway_bus.client() as anonymous:
        missing = anonymous.get("/v1/catalogue/classes")
        wrong = anonymous.get("/v1/catalogue/classes", headers={"Authorization": "Bearer sbk_nokey_nosecret"})
        scheme = anonymous.get(
            "/v1/catalogue/classes", headers={"Authorization": f"Basic {gateway_bus.tokens['amr-reg']}"}
        )
    assert (missing.status_code, wrong.status_code, scheme.status_code) == (401, 401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert set(missing.json()) == {"detail"}


def test_a_revoked_key_is_401_without_a_restart(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    store = KeyStore(gb.bus.catalogue, gb.bus.access, gb.bus.topics.api_keys, control=control_keys())
    store.revoke("psb-case")
    with gb.client("psb-case") as psb:
        status = eventually(lambda: psb.get("/v1/catalogue/classes").status_code, lambda code: code == 401, 20)
    assert status == 401
    with gb.client("tax-levy") as tax:  # other systems' keys are untouched
        assert tax.get("/v1/catalogue/classes").status_code == 200


def test_publishing_a_class_the_department_does_not_provide_is_403_and_audited(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    with gb.client("tax-levy") as tax:
        response = tax.post(f"/v1/classes/{ENTERPRISE}/records", json={"uscc": "U1"})
    assert_audited_refusal(gb, response, "publish", "tax-levy")
    assert end_offsets(gb.bus.access, gb.bus.topics.source(ENTERPRISE)) == 0


def test_reading_another_systems_feed_is_403_and_audited(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    with gb.client("tax-levy") as tax:
        response = tax.get("/v1/systems/psb-case/feed")
    assert_audited_refusal(gb, response, "feed", "tax-levy")


def test_reading_another_systems_batches_is_403_and_audited(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    with gb.client("tax-levy") as tax:
        response = tax.get("/v1/systems/psb-case/batches")
    assert_audited_refusal(gb, response, "batches", "tax-levy")


def test_the_websocket_feed_refuses_strangers_and_other_systems(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    base = gb.gateway.base_url.replace("http://", "ws://")
    with pytest.raises(InvalidStatus) as anonymous:
        connect(f"{base}/v1/systems/tax-levy/feed/ws").close()
    assert anonymous.value.response.status_code == 401
    headers = {"Authorization": f"Bearer {gb.tokens['tax-levy']}"}
    with pytest.raises(InvalidStatus) as other:
        connect(f"{base}/v1/systems/psb-case/feed/ws", additional_headers=headers).close()
    assert other.value.response.status_code == 403
    assert [f["action"] for f in forbidden_facts(gb, 1)] == ["feed"]


def test_deciding_on_a_grant_of_another_departments_class_is_403_and_audited(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    grant_id = apply_penalty(gb)
    with gb.client("tax-levy") as tax:  # TAX consumes it and can see it, but AMR provides it
        response = tax.post(f"/v1/grants/{grant_id}/approve", json={})
    assert_audited_refusal(gb, response, "grant.approve", "tax-levy")
    with gb.client("amr-reg") as amr:
        assert amr.get(f"/v1/grants/{grant_id}").json()["effective_state"] == "applied"


def test_a_grant_another_department_cannot_see_is_404_and_its_names_do_not_leak(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    grant_id = apply_penalty(gb)
    with gb.client("psb-case") as psb:
        responses = [
            psb.get(f"/v1/grants/{grant_id}"),
            psb.post(f"/v1/grants/{grant_id}/revoke", json={"reason": "x"}),
            psb.post(f"/v1/grants/{grant_id}/reject", json={"reason": "x"}),
        ]
        listed = psb.get("/v1/grants")
    assert [r.status_code for r in responses] == [404, 404, 404]
    for response in responses:
        assert PENALTY not in response.text
        assert "AMR" not in response.text
        assert "tax-levy" not in response.text
    assert listed.json() == []


def test_applying_for_another_departments_system_is_403_and_audited(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    with gb.client("psb-case") as psb:
        response = psb.post(
            "/v1/grants",
            json={"consumer": "tax-levy", "data_class": PENALTY, "purpose": "p", "scenario": "s"},
        )
    assert_audited_refusal(gb, response, "grant.apply", "psb-case")


def test_the_provider_decides_over_http_with_the_clis_rules(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    grant_id = apply_penalty(gb)
    with gb.client("amr-reg") as amr:
        no_reason = amr.post(f"/v1/grants/{grant_id}/reject", json={"reason": " "})
        approved = amr.post(f"/v1/grants/{grant_id}/approve", json={"valid_days": 10})
        again = amr.post(f"/v1/grants/{grant_id}/approve", json={})
        revoked = amr.post(f"/v1/grants/{grant_id}/revoke", json={"reason": "done"})
    assert no_reason.status_code == 409
    assert "must give its reason" in no_reason.text
    assert approved.status_code == 200
    assert approved.json()["effective_state"] == "approved"
    assert again.status_code == 409
    assert revoked.json()["effective_state"] == "revoked"


def test_invalid_records_name_index_and_field_and_nothing_of_the_batch_lands(gateway_bus: GatewayBus) -> None:
    gb = gateway_bus
    good = {
        "uscc": "U1",
        "name": "n",
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": "2020-01-01",
        "seq": 1,
    }
    batch = [
        good,
        {**good, "seq": "two"},
        {**good, "established": "not a date"},
        {k: v for k, v in good.items() if k != "name"},
    ]
    with gb.client("amr-reg") as amr:
        response = amr.post(f"/v1/classes/{ENTERPRISE}/records", json=batch)
    assert response.status_code == 422
    errors = response.json()["detail"]["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "seq"), (2, "established"), (3, "name")]
    assert end_offsets(gb.bus.access, gb.bus.topics.source(ENTERPRISE)) == 0


def test_api_keys_are_issued_listed_and_revoked_with_the_cli(
    gateway_bus: GatewayBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gb = gateway_bus
    gb.bus.use_in_env(monkeypatch)
    keys_in_env(monkeypatch)
    assert cli(["apikey", "issue", "--system", "hrss-si", "--json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert "key_hash" not in issued
    gb.wait_for_key(issued["token"])
    assert cli(["apikey", "list", "--system", "hrss-si"]) == 0
    listing = capsys.readouterr().out
    assert issued["key_id"] in listing
    assert issued["token"] not in listing
    assert cli(["apikey", "revoke", "--system", "hrss-si", "--key", issued["key_id"]]) == 0
    with gb.gateway.client(issued["token"]) as client:
        status = eventually(lambda: client.get("/v1/catalogue/classes").status_code, lambda code: code == 401, 20)
    assert status == 401
    assert cli(["apikey", "issue", "--system", "no-such-system"]) == 4
