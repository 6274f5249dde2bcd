"""The router's per-record path without Kafka: forwards, denials, dead letters and their counts."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_core.wire import frame
from sharebus_router.dead_letters import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_TOPIC
from sharebus_rules.grant_workflow import apply
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_records import good as demo_enterprise_record

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


@pytest.fixture
def demo_harness() -> Harness:
    return Harness(load_catalogue(DEFAULT_CATALOGUE_DIR))


def enterprise(seq: int = 1) -> dict[str, Any]:
    return {
        "uscc": "91310110666007217T",
        "name": "重庆示例科技有限公司",
        "legal_rep_name": "张三",
        "registered_capital": 100.0,
        "established": dt.date(2020, 1, 2),
        "seq": seq,
        "note": None,
    }


def penalty() -> dict[str, Any]:
    return {"uscc": "91310110666007217T", "person_id_number": "11010519491231002X", "amount": 500.0, "seq": 1}


def penalty_grant(**overrides: object) -> Grant:
    now = dt.datetime.now(dt.UTC)
    values: dict[str, Any] = {
        "grant_id": "g-1",
        "data_class": PENALTY,
        "provider": "AMR",
        "consumer": "tax-levy",
        "consumer_department": "TAX",
        "requester": "Li",
        "purpose": "tax credit",
        "scenario": "rating",
        "fields": ("uscc", "person_id_number", "amount"),
        "masked_fields": ("person_id_number",),
        "state": GrantState.APPROVED,
        "applied_at": now,
        "decided_at": now,
        "valid_until": now + dt.timedelta(days=1),
    }
    values.update(overrides)
    return Grant.model_validate(values)


def test_unconditional_record_goes_to_every_subscriber_with_headers(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise())
    harness.handle(ENTERPRISE, value)
    subscribers = [s.system for s in harness.catalogue.subscriptions_of(ENTERPRISE)]
    assert [topic for topic, *_ in harness.sent] == [TOPICS.delivery(s) for s in subscribers]
    for (_topic, key, sent_value, headers), system in zip(harness.sent, subscribers, strict=True):
        assert key == b"k"
        assert sent_value == value  # nothing sensitive: the published bytes pass unchanged
        meta = h.header_map(headers)
        assert meta[h.CONSUMER] == system.encode()
        assert meta[h.MODE] == b"realtime"
        assert meta[h.RECORD_ID] == b"r1"
        labels = {
            "provider": "AMR",
            "consumer": system,
            "data_class": ENTERPRISE,
            "share_type": "unconditional",
            "mode": "realtime",
        }
        assert harness.value("sharebus_calls_total", labels) == 1
        assert harness.value("sharebus_records_total", labels) == 1


def test_unconditional_share_leaves_out_sensitive_fields(demo_harness: Harness) -> None:
    code = "301001001/000001"
    record = demo_enterprise_record()
    demo_harness.handle(code, demo_harness.encode(code, record))
    assert demo_harness.sent
    for _topic, _key, sent_value, _headers in demo_harness.sent:
        assert sent_value is not None
        delivered = demo_harness.decode(sent_value)
        assert "legal_rep_id_number" not in delivered
        assert delivered["uscc"] == record["uscc"]
        assert delivered["legal_rep_name"] == "张三"


def test_conditional_class_without_grant_is_denied_and_counted(harness: Harness) -> None:
    harness.handle(PENALTY, harness.encode(PENALTY, penalty()))
    assert harness.sent == []
    labels = {"provider": "AMR", "consumer": "tax-levy", "data_class": PENALTY, "reason": "no_grant"}
    assert harness.value("sharebus_denials_total", labels) == 1


def test_approved_grant_delivers_granted_fields_masked(harness: Harness) -> None:
    harness.grant(penalty_grant(fields=("uscc", "person_id_number"), masked_fields=("person_id_number",)))
    harness.handle(PENALTY, harness.encode(PENALTY, penalty()))
    [(topic, _key, sent_value, headers)] = harness.sent
    assert topic == TOPICS.delivery("tax-levy")
    assert sent_value is not None
    assert harness.decode(sent_value) == {"uscc": "91310110666007217T", "person_id_number": "110105********002X"}
    assert h.header_map(headers)[h.GRANT_ID] == b"g-1"


def test_revoked_grant_stops_delivery(harness: Harness) -> None:
    harness.grant(penalty_grant())
    harness.grant(penalty_grant(state=GrantState.REVOKED, reason="done"))
    harness.handle(PENALTY, harness.encode(PENALTY, penalty()))
    assert harness.sent == []
    labels = {"provider": "AMR", "consumer": "tax-levy", "data_class": PENALTY, "reason": "grant_revoked"}
    assert harness.value("sharebus_denials_total", labels) == 1


def test_expiry_is_enforced_per_record_before_the_route_is_rebuilt(harness: Harness) -> None:
    harness.grant(penalty_grant(valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)))
    labels = {"provider": "AMR", "consumer": "tax-levy", "data_class": PENALTY, "reason": "grant_expired"}
    # The target's expiry count is a series only once a record meets the expired grant.
    assert harness.registry.get_sample_value("sharebus_denials_total", labels) is None
    harness.now += 11 * 60
    harness.handle(PENALTY, harness.encode(PENALTY, penalty()))
    assert harness.sent == []
    assert harness.value("sharebus_denials_total", labels) == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"plain text, not Avro", "not_wire_format"),
        (None, "not_wire_format"),
        (frame(99_999, b"\x02"), "unknown_schema_id"),
        (frame(1, b"\x02"), "schema_invalid"),
    ],
)
def test_bad_bytes_go_to_the_dead_letter_topic(harness: Harness, value: bytes | None, reason: str) -> None:
    harness.handle(ENTERPRISE, value, offset=41)
    [(topic, _key, sent_value, headers)] = harness.sent
    meta = h.header_map(headers)
    assert topic == TOPICS.dead_letter
    assert sent_value == value
    assert meta[DLQ_REASON] == reason.encode()
    assert meta[DLQ_SOURCE_TOPIC] == TOPICS.source(ENTERPRISE).encode()
    assert meta[DLQ_SOURCE_OFFSET] == b"41"
    assert harness.value("sharebus_dead_letters_total", {"data_class": ENTERPRISE, "reason": reason}) == 1
    received = {"provider": "AMR", "data_class": ENTERPRISE, "mode": "realtime"}
    assert harness.value("sharebus_records_received_total", received) == 0


def test_record_of_another_class_schema_is_a_mismatch(harness: Harness) -> None:
    harness.handle(ENTERPRISE, harness.encode(PENALTY, penalty()))
    [(topic, _, _, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    assert h.header_map(headers)[DLQ_REASON] == b"schema_mismatch"


def test_trailing_bytes_are_schema_invalid(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise()) + b"\x00\x00"
    harness.handle(ENTERPRISE, value)
    [(_, _, _, headers)] = harness.sent
    assert h.header_map(headers)[DLQ_REASON] == b"schema_invalid"


@pytest.mark.parametrize(("label", "reason"), [("999999999/000001", "unknown_data_class"), (PENALTY, "class_mismatch")])
def test_a_record_labelled_with_another_class_is_dead_lettered(harness: Harness, label: str, reason: str) -> None:
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise()), label=label)
    [(topic, _, _, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    assert h.header_map(headers)[DLQ_REASON] == reason.encode()


def test_every_decision_of_a_record_is_one_audit_fact(harness: Harness) -> None:
    harness.grant(penalty_grant(consumer="hrss-si", consumer_department="HRSS", grant_id="g-2"))
    value = harness.encode(PENALTY, penalty())
    harness.handle(PENALTY, value, offset=9)
    [fact] = harness.facts
    assert fact["data_class"] == PENALTY
    assert fact["provider"] == "AMR"
    assert fact["key"] == "k"
    assert fact["record_id"] == "r1"
    assert fact["source"] == {"topic": TOPICS.source(PENALTY), "partition": 0, "offset": 9}
    by_consumer = {d["consumer"]: d for d in fact["decisions"]}
    assert by_consumer["tax-levy"] == {
        "consumer": "tax-levy",
        "grant_id": None,
        "decision": "deny",
        "reason": "no_grant",
        "payload_sha256": None,
    }
    delivered = by_consumer["hrss-si"]
    assert delivered["decision"] == "deliver"
    assert delivered["grant_id"] == "g-2"
    [(_, _, sent_value, _)] = harness.sent
    assert sent_value is not None
    assert delivered["payload_sha256"] == hashlib.sha256(sent_value).hexdigest()


def test_grant_gauges_count_states_and_overdue_applications(harness: Harness) -> None:
    from sharebus_router.grant_metrics import GrantCollector

    now = dt.datetime.now(dt.UTC)
    harness.table.on_grant(penalty_grant(grant_id="active"))
    harness.table.on_grant(penalty_grant(grant_id="old", valid_until=now - dt.timedelta(days=1)))
    harness.table.on_grant(
        penalty_grant(
            grant_id="late", state=GrantState.APPLIED, decided_at=None, applied_at=now - dt.timedelta(days=30)
        )
    )
    registry = CollectorRegistry()
    registry.register(GrantCollector(harness.table.grants, lambda: now, 10, catalogue=lambda: harness.catalogue))
    assert registry.get_sample_value("sharebus_grants", {"state": "approved"}) == 1
    assert registry.get_sample_value("sharebus_grants", {"state": "expired"}) == 1
    assert registry.get_sample_value("sharebus_grants", {"state": "applied"}) == 1
    assert registry.get_sample_value("sharebus_grants", {"state": "revoked"}) == 0
    assert registry.get_sample_value("sharebus_grant_applications_overdue", {"provider": "AMR"}) == 1


def test_a_rejected_application_neither_ends_nor_claims_a_catalogue_subscription(demo_harness: Harness) -> None:
    # An application for only the sensitive field of an unconditional class is rejected at once; the
    # subscriber keeps its catalogue subscription's open fields, which never relied on that grant.
    now = dt.datetime.now(dt.UTC)
    rejected = apply(
        demo_harness.catalogue,
        grant_id="g-rejected",
        acting_department="TAX",
        requester="Li",
        consumer="tax-levy",
        data_class=ENTERPRISE,
        purpose="tax credit",
        scenario="rating",
        fields=("legal_rep_id_number",),
        valid_until=now + dt.timedelta(minutes=10),
        now=now,
    )
    assert rejected.state is GrantState.REJECTED
    demo_harness.grant(rejected)
    demo_harness.now += 11 * 60  # past the validity the application asked for
    demo_harness.handle(ENTERPRISE, demo_harness.encode(ENTERPRISE, demo_enterprise_record()))
    [delivery] = [
        (value, headers) for topic, _, value, headers in demo_harness.sent if topic == TOPICS.delivery("tax-levy")
    ]
    assert h.GRANT_ID not in h.header_map(delivery[1])
    [fact] = demo_harness.facts
    [decision] = [d for d in fact["decisions"] if d["consumer"] == "tax-levy"]
    assert (decision["decision"], decision["grant_id"]) == ("deliver", None)
