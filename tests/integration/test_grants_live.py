"""Grants take effect on a running router within seconds, with no restart, and only the granted fields flow."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sharebus_cli.main import main as cli
from sharebus_core.grants import GrantState
from sharebus_grants import GrantService
from sharebus_sdk import Publisher, PublisherSettings
from tests.integration.conftest import Bus, ClockedBus, GatewayBus
from tests.support.kafka import end_offsets, eventually, metric
from tests.support.keys import control_keys
from tests.support.records import PENALTY, penalty, publish_records
from tests.support.router import wait_routed
from tests.support.subscribe import collect

INSPECTION = "301001003/000001"  # not shared


def service(bus: Bus) -> GrantService:
    return GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())


def publish(bus: Bus, seqs: range) -> None:
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in seqs))


def denials(bus: Bus, reason: str, expected: int) -> float:
    labels = {"consumer": "tax-levy", "data_class": PENALTY, "reason": reason}
    return eventually(
        lambda: metric(bus.router.metrics_url, "sharebus_denials_total", **labels), lambda v: v >= expected
    )


def received(bus: Bus, expected: int) -> list[dict[str, Any]]:
    deliveries = collect(bus.settings, "tax-levy", expected, idle_timeout_s=10).deliveries
    assert all(d.data_class == PENALTY for d in deliveries)
    return [d.value for d in deliveries]


def test_approve_then_revoke_takes_effect_live(bus: Bus) -> None:
    grants = service(bus)
    delivery_topic = bus.topics.delivery("tax-levy")

    publish(bus, range(0, 3))
    assert denials(bus, "no_grant", 3) == 3

    grant = grants.apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="tax credit rating",
        scenario="annual rating",
        fields=["uscc", "person_id_number", "seq"],
        masked_fields=["person_id_number"],
    )
    assert grant.state is GrantState.APPLIED
    wait_routed(bus.router, 1)
    publish(bus, range(3, 6))
    assert denials(bus, "no_grant", 6) == 6  # an application alone entitles nothing
    assert end_offsets(bus.access, delivery_topic) == 0

    grants.approve(grant.grant_id, department="AMR", valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    wait_routed(bus.router, 2)
    assert metric(bus.router.metrics_url, "sharebus_grants", state="approved") == 1
    publish(bus, range(6, 10))
    values = received(bus, 4)
    assert sorted(v["seq"] for v in values) == [6, 7, 8, 9]
    for value in values:
        # Only the granted fields, masked where granted masked; "amount" was not granted.
        assert value == {
            "uscc": penalty(value["seq"])["uscc"],
            "person_id_number": "110105********002X",
            "seq": value["seq"],
        }

    grants.revoke(grant.grant_id, department="AMR", reason="rating finished")
    wait_routed(bus.router, 3)
    assert metric(bus.router.metrics_url, "sharebus_grants", state="revoked") == 1
    assert metric(bus.router.metrics_url, "sharebus_grants", state="approved") == 0
    publish(bus, range(10, 13))
    assert denials(bus, "grant_revoked", 3) == 3
    assert end_offsets(bus.access, delivery_topic) == 4


def test_expired_grant_stops_delivery(clocked: ClockedBus) -> None:
    bus = clocked.bus
    grants = service(bus)
    grant = grants.apply(
        department="TAX",
        requester="Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="audit",
        scenario="spot check",
        fields=["uscc", "seq"],
    )
    # An hour past the router's clock: valid now on every clock; expired once the test moves the router's.
    expiry = clocked.now() + dt.timedelta(hours=1)
    grants.approve(grant.grant_id, department="AMR", valid_until=expiry)
    wait_routed(bus.router, 2)
    publish(bus, range(0, 2))
    assert sorted(v["seq"] for v in received(bus, 2)) == [0, 1]

    clocked.move_clock_past(expiry)
    publish(bus, range(2, 4))
    assert denials(bus, "grant_expired", 2) == 2
    assert end_offsets(bus.access, bus.topics.delivery("tax-levy")) == 2


def test_not_shared_class_is_refused_with_its_legal_basis_and_never_delivers(bus: Bus) -> None:
    grant = service(bus).apply(
        department="PSB",
        requester="Wang",
        consumer="psb-case",
        data_class=INSPECTION,
        purpose="case",
        scenario="investigation",
    )
    assert grant.state is GrantState.REJECTED
    assert "个人信息保护法" in (grant.reason or "")
    with Publisher("AMR", PublisherSettings.model_validate(bus.settings.model_dump()), bus.catalogue) as pub:
        pub.publish(INSPECTION, {"uscc": "91500000MA0000001X", "note": "n", "seq": 1})
    labels = {"consumer": "psb-case", "data_class": INSPECTION, "reason": "class_not_shared"}
    assert eventually(lambda: metric(bus.router.metrics_url, "sharebus_denials_total", **labels), lambda v: v >= 1) == 1
    assert end_offsets(bus.access, bus.topics.delivery("psb-case")) == 0


def test_the_cli_acts_with_its_api_key_and_as_is_only_a_check(
    gateway_bus: GatewayBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Department actions go through the gateway: the department is the key's, never a typed word."""
    gb = gateway_bus
    gb.bus.use_in_env(monkeypatch)
    monkeypatch.setenv("SHAREBUS_GATEWAY_URL", gb.gateway.base_url)

    def as_system(system: str) -> None:
        monkeypatch.setenv("SHAREBUS_API_KEY", gb.tokens[system])

    apply = [
        "grant",
        "apply",
        "--consumer",
        "tax-levy",
        "--class",
        PENALTY,
        "--purpose",
        "credit",
        "--scenario",
        "rating",
    ]
    as_system("tax-levy")
    assert cli([*apply, "--as", "PSB"]) == 3  # a claim the key does not back: refused before any write
    assert "the API key acts for TAX (system tax-levy), not PSB; nothing was done" in capsys.readouterr().err
    assert cli(["grant", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    # A name given with the key is recorded beside the key's system, as stated, never as the requester.
    assert cli([*apply, "--fields", "uscc,seq", "--requester", "officer Li", "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    grant_id = applied["grant_id"]
    assert (applied["consumer_department"], applied["requester"]) == ("TAX", "tax-levy (stated: officer Li)")

    as_system("psb-case")
    assert cli(apply) == 3
    assert "PSB may only apply for its own systems" in capsys.readouterr().err
    assert cli(["grant", "show", grant_id]) == 4  # not visible: neither provider nor consumer
    assert "no such grant visible to your department" in capsys.readouterr().err
    as_system("tax-levy")
    assert cli(["grant", "approve", grant_id, "--as", "TAX"]) == 3
    assert "only the provider of the data class may approve" in capsys.readouterr().err
    as_system("amr-reg")
    assert cli(["grant", "reject", grant_id, "--as", "AMR", "--reason", " "]) == 3
    assert "must give its reason" in capsys.readouterr().err
    assert cli(["grant", "approve", grant_id, "--as", "AMR", "--valid-days", "30"]) == 0
    assert "approved" in capsys.readouterr().out
    key_file = tmp_path / "tax.key"
    key_file.write_text(gb.tokens["tax-levy"] + "\n")
    monkeypatch.delenv("SHAREBUS_API_KEY")
    assert cli(["grant", "list", "--state", "approved"]) == 7
    assert "no API key" in capsys.readouterr().err
    assert cli(["grant", "list", "--as", "TAX", "--state", "approved", "--api-key-file", str(key_file)]) == 0
    assert grant_id in capsys.readouterr().out
