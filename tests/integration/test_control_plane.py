"""The control plane cannot be forged: a grant or API-key record written to its topic without the control
plane's signature (here with the admin access, the strongest writer there is) changes nothing. It is
counted by the process that read it, and audited as a denial."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin._config import ConfigResource
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharebus_cli.children import Child
from sharebus_core.compacted_log import ensure_compacted_topic
from sharebus_core.grant_log import ensure_grant_topic
from sharebus_core.grants import Grant, GrantState
from sharebus_core.produce import produce_confirmed
from sharebus_core.signing import Signer
from sharebus_gateway.keys import KeyStore, new_key
from sharebus_grants import GrantService
from sharebus_ops.audit import verify
from tests.integration.conftest import Bus, GatewayBus
from tests.support.audit_trail import trail_events
from tests.support.auditor import start_auditor
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.keys import control_keys
from tests.support.records import PENALTY, penalty, publish_records
from tests.support.router import wait_routed
from tests.support.subscribe import collect

REJECTED = "sharebus_control_events_rejected_total"


@pytest.fixture
def auditor(bus: Bus, tmp_path: Path) -> Iterator[Child]:
    service = start_auditor(bus.services["auditor"], bus.namespace, tmp_path)
    yield service
    service.stop()


def forged_grant(grant_id: str) -> Grant:
    """The issue's attack: an approved grant of every field, unmasked, to a system whose department never applied."""
    now = dt.datetime.now(dt.UTC)
    return Grant(
        grant_id=grant_id,
        data_class=PENALTY,
        provider="AMR",
        consumer="tax-levy",
        consumer_department="TAX",
        requester="nobody",
        purpose="forged",
        scenario="forged",
        fields=("uscc", "person_id_number", "amount", "seq"),
        state=GrantState.APPROVED,
        applied_at=now,
        valid_until=now + dt.timedelta(days=365),
        decided_at=now,
        decided_by="AMR",
    )


def control_events(bus: Bus, expected: int) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        return [e for e in trail_events(bus.access, bus.topics.audit) if e.get("mode") == "control"]

    return eventually(read, lambda events: len(events) >= expected, timeout_s=60)


def test_a_grant_event_without_the_control_planes_signature_grants_nothing(bus: Bus, auditor: Child) -> None:
    grants_topic = bus.topics.grants
    unsigned = forged_grant("g-forged-1")
    produce_confirmed(bus.access, grants_topic, b"g-forged-1", unsigned.model_dump_json().encode())
    # Signed, and well-formed, but by a key the bus does not trust.
    stranger = Signer(Ed25519PrivateKey.generate())
    foreign = forged_grant("g-forged-2").model_dump_json().encode()
    produce_confirmed(
        bus.access, grants_topic, b"g-forged-2", stranger.sign(foreign, topic=grants_topic, key="g-forged-2")
    )

    def rejected(reason: str) -> float:
        return metric(bus.router.metrics_url, REJECTED, topic=grants_topic, reason=reason)

    assert eventually(lambda: (rejected("unsigned"), rejected("unknown_key")), lambda v: v == (1, 1)) == (1, 1)

    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(5)))
    labels = {"consumer": "tax-levy", "data_class": PENALTY, "reason": "no_grant"}
    denied = eventually(lambda: metric(bus.router.metrics_url, "sharebus_denials_total", **labels), lambda v: v >= 5)
    assert denied == 5
    assert end_offsets(bus.access, bus.topics.delivery("tax-levy")) == 0
    assert metric(bus.router.metrics_url, "sharebus_grants", state="approved") == 0

    audited = control_events(bus, 2)
    assert sorted((e["key"], e["reason"], e["consumer"], e["decision"], e["reader"]) for e in audited) == [
        ("g-forged-1", "control_event_unsigned", "tax-levy", "deny", "router"),
        ("g-forged-2", "control_event_unknown_key", "tax-levy", "deny", "router"),
    ]
    assert {e["source"]["topic"] for e in audited} == {grants_topic}
    assert verify(bus.access, bus.topics.audit).broken is None

    # The same grant, applied for and approved through the control plane, does deliver: the path was open.
    service = GrantService(bus.catalogue, bus.access, grants_topic, control=control_keys())
    grant = service.apply(
        department="TAX",
        requester="Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="rating",
        scenario="annual",
        fields=["uscc", "seq"],
    )
    service.approve(grant.grant_id, department="AMR", valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    wait_routed(bus.router, 2)
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(5, 7)))
    delivered = collect(bus.settings, "tax-levy", 2, idle_timeout_s=10).deliveries
    assert sorted(d.value["seq"] for d in delivered) == [5, 6]
    assert all(set(d.value) == {"uscc", "seq"} for d in delivered)


def test_a_forged_api_key_record_does_not_authenticate_and_a_forged_revocation_revokes_nothing(
    gateway_bus: GatewayBus,
) -> None:
    gb = gateway_bus
    topic = gb.bus.topics.api_keys
    forged = new_key("psb-case", "PSB", dt.datetime.now(dt.UTC))
    produce_confirmed(gb.bus.access, topic, forged.key.key_id.encode(), forged.key.model_dump_json().encode())
    store = KeyStore(gb.bus.catalogue, gb.bus.access, topic, control=control_keys())
    [tax_key] = store.keys_of("tax-levy")
    revoked = tax_key.model_copy(update={"revoked_at": dt.datetime.now(dt.UTC)})
    produce_confirmed(gb.bus.access, topic, tax_key.key_id.encode(), revoked.model_dump_json().encode())
    # A key issued after the forgeries authenticates once the gateway has read past them.
    gb.wait_for_key(store.issue("hrss-si").token.get_secret_value())

    with gb.gateway.client(forged.token.get_secret_value()) as intruder:
        assert intruder.get("/v1/catalogue/classes").status_code == 401
    with gb.client("tax-levy") as tax:
        assert tax.get("/v1/catalogue/classes").status_code == 200
    assert forged.key.key_id not in {k.key_id for k in store.keys_of("psb-case")}
    assert store.keys_of("tax-levy") == [tax_key]  # the CLI's reader ignores them too

    metrics_url = f"{gb.gateway.base_url}/metrics"
    assert metric(metrics_url, REJECTED, topic=topic, reason="unsigned") == 2
    messages = read_all(gb.bus.access, gb.bus.topics.audit_facts, 2, timeout_s=20)
    facts = [f for m in messages for f in json.loads(m.value() or b"{}")["records"] if f.get("mode") == "control"]
    assert sorted(
        (f["key"], f["decisions"][0]["consumer"], f["decisions"][0]["reason"], f["reader"]) for f in facts
    ) == sorted(
        [
            (forged.key.key_id, "psb-case", "control_event_unsigned", "gateway"),
            (tax_key.key_id, "tax-levy", "control_event_unsigned", "gateway"),
        ]
    )


def test_the_control_topics_keep_every_event_for_ever_stamped_by_the_broker(bus: Bus) -> None:
    # Readers take only a step forward of a grant's or a key's history: compaction would drop the
    # history behind a replay, and a reader starting afresh would take the replay alone.
    ensure_grant_topic(bus.access, bus.topics.grants)
    ensure_compacted_topic(bus.access, bus.topics.api_keys)
    admin = bus.access.admin()
    for topic in (bus.topics.grants, bus.topics.api_keys):
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        configs = admin.describe_configs([resource])[resource].result(timeout=30)
        kept = {name: configs[name].value for name in ("cleanup.policy", "retention.ms", "message.timestamp.type")}
        assert kept == {"cleanup.policy": "delete", "retention.ms": "-1", "message.timestamp.type": "LogAppendTime"}
