"""10,000 records, a tenth of them malformed: every good one lands exactly where entitled, every bad one in
the dead-letter topic with its reason, and every count matches. Then a dead letter is fixed and replayed."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sharebus_core import headers as h
from sharebus_core.registry_client import registry_client
from sharebus_core.wire import frame
from sharebus_grants import GrantService
from sharebus_ops.dlq import list_dead_letters, replay
from sharebus_sdk import Delivery
from tests.integration.conftest import Bus
from tests.support.kafka import end_offsets, eventually, metric
from tests.support.keys import control_keys
from tests.support.router import wait_routed
from tests.support.subscribe import collect

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"
INSPECTION = "301001003/000001"
TOTAL = 10_000


class Workload:
    """Builds the records: the kind of each is decided by its index, so the expectations are exact."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        client = registry_client(bus.registry_url, bus.settings.registry_auth)
        self.serializers = {
            code: AvroSerializer(client, bus.catalogue.schema(code).text, conf={"auto.register.schemas": False})
            for code in (ENTERPRISE, PENALTY, INSPECTION)
        }
        self.expected_dead: Counter[str] = Counter()
        self.good: Counter[str] = Counter()

    def encode(self, code: str, record: dict[str, Any]) -> bytes:
        ctx = SerializationContext(self.bus.topics.source(code), MessageField.VALUE)
        value = self.serializers[code](record, ctx)
        assert isinstance(value, bytes)
        return value

    def record(self, i: int) -> tuple[str, bytes, str]:
        """(topic's class, value, class label) of record ``i``."""
        kind = i % 10
        if kind == 9:
            return self.malformed(i)
        if kind < 6:
            self.good[ENTERPRISE] += 1
            value = {
                "uscc": f"U{i:017d}",
                "name": f"企业{i}",
                "legal_rep_name": "张三",
                "registered_capital": 1.0,
                "established": dt.date(2020, 1, 1),
                "seq": i,
                "note": None,
            }
            return ENTERPRISE, self.encode(ENTERPRISE, value), ENTERPRISE
        if kind < 8:
            self.good[PENALTY] += 1
            value = {"uscc": f"U{i:017d}", "person_id_number": "11010519491231002X", "amount": 9.5, "seq": i}
            return PENALTY, self.encode(PENALTY, value), PENALTY
        self.good[INSPECTION] += 1
        return INSPECTION, self.encode(INSPECTION, {"uscc": f"U{i:017d}", "note": "internal", "seq": i}), INSPECTION

    def malformed(self, i: int) -> tuple[str, bytes, str]:
        good = self.encode(
            ENTERPRISE,
            {
                "uscc": "U",
                "name": "n",
                "legal_rep_name": "l",
                "registered_capital": 1.0,
                "established": dt.date(2020, 1, 1),
                "seq": i,
                "note": None,
            },
        )
        variant = (i // 10) % 5
        if variant == 0:
            self.expected_dead["not_wire_format"] += 1
            return ENTERPRISE, json.dumps({"seq": i}).encode(), ENTERPRISE
        if variant == 1:
            self.expected_dead["unknown_schema_id"] += 1
            return ENTERPRISE, frame(2_000_000_000, good[5:]), ENTERPRISE
        if variant == 2:
            self.expected_dead["schema_invalid"] += 1
            return ENTERPRISE, good[:-3], ENTERPRISE
        if variant == 3:
            self.expected_dead["unknown_data_class"] += 1
            return ENTERPRISE, good, "999999999/000009"
        self.expected_dead["class_mismatch"] += 1
        return ENTERPRISE, good, PENALTY


def receive_all(bus: Bus, system: str, expected: int) -> list[Delivery]:
    received = collect(bus.settings, system, expected)
    assert received.duplicates == 0
    return received.deliveries


def test_ten_thousand_mixed_records_land_exactly_where_entitled(bus: Bus) -> None:
    grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
    grant = grants.apply(
        department="TAX",
        requester="Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="credit rating",
        scenario="rating",
        fields=["uscc", "person_id_number", "seq"],
        masked_fields=["person_id_number"],
    )
    grants.approve(grant.grant_id, department="AMR")
    wait_routed(bus.router, 2)  # the application and its approval

    workload = Workload(bus)
    producer = bus.access.producer({"linger.ms": 10})
    for i in range(TOTAL):
        code, value, label = workload.record(i)
        headers: list[tuple[str, str | bytes | None]] = [
            (h.DATA_CLASS, label.encode()),
            (h.PROVIDER, b"AMR"),
            (h.RECORD_ID, f"r{i}".encode()),
        ]
        producer.produce(bus.topics.source(code), key=f"k{i}".encode(), value=value, headers=headers)
        producer.poll(0)
    assert producer.flush(30) == 0
    dead_total = sum(workload.expected_dead.values())
    assert dead_total == TOTAL // 10

    url = bus.router.metrics_url
    routed = eventually(
        lambda: metric(url, "sharebus_records_received_total") + metric(url, "sharebus_dead_letters_total"),
        lambda v: v >= TOTAL,
        timeout_s=120,
    )
    assert routed == TOTAL

    tax = receive_all(bus, "tax-levy", workload.good[ENTERPRISE] + workload.good[PENALTY])
    psb = receive_all(bus, "psb-case", workload.good[ENTERPRISE])
    assert Counter(d.data_class for d in tax) == {
        ENTERPRISE: workload.good[ENTERPRISE],
        PENALTY: workload.good[PENALTY],
    }
    assert Counter(d.data_class for d in psb) == {ENTERPRISE: workload.good[ENTERPRISE]}
    for delivery in tax:
        if delivery.data_class == PENALTY:
            assert set(delivery.value) == {"uscc", "person_id_number", "seq"}
            assert delivery.value["person_id_number"] == "110105********002X"
            assert delivery.value["seq"] % 10 in (6, 7)
        else:
            assert delivery.value["seq"] % 10 < 6
    assert len({d.record_id for d in tax}) == len(tax)
    for system in ("hrss-si", "amr-reg"):
        assert end_offsets(bus.access, bus.topics.delivery(system)) == 0
    assert end_offsets(bus.access, bus.topics.delivery("tax-levy")) == len(tax)
    assert end_offsets(bus.access, bus.topics.delivery("psb-case")) == len(psb)

    letters = list_dead_letters(bus.access, bus.topics.dead_letter)
    assert Counter(d.reason for d in letters) == workload.expected_dead
    assert all(d.source_topic == bus.topics.source(ENTERPRISE) and d.value is not None for d in letters)

    for reason, count in workload.expected_dead.items():
        assert metric(url, "sharebus_dead_letters_total", reason=reason) == count
    for code, consumer, count in (
        (ENTERPRISE, "tax-levy", workload.good[ENTERPRISE]),
        (ENTERPRISE, "psb-case", workload.good[ENTERPRISE]),
        (PENALTY, "tax-levy", workload.good[PENALTY]),
    ):
        assert metric(url, "sharebus_records_total", data_class=code, consumer=consumer) == count
        assert metric(url, "sharebus_calls_total", data_class=code, consumer=consumer) == count
    assert (
        metric(url, "sharebus_denials_total", data_class=INSPECTION, consumer="psb-case", reason="class_not_shared")
        == workload.good[INSPECTION]
    )
    assert metric(url, "sharebus_records_received_total", data_class=ENTERPRISE) == workload.good[ENTERPRISE]


def test_a_dead_letter_is_replayed_after_its_schema_is_registered_for_its_class(bus: Bus) -> None:
    client = registry_client(bus.registry_url, bus.settings.registry_auth)
    evolved = json.loads(bus.catalogue.schema(ENTERPRISE).text)
    evolved["fields"].append({"name": "branch", "type": ["null", "string"], "default": None})
    evolved_text = json.dumps(evolved)
    # The provider registered its new schema version under a wrong subject, and published with it.
    schema_id = client.register_schema(f"{bus.namespace}.elsewhere-value", Schema(evolved_text, "AVRO"))
    record = {
        "uscc": "U1",
        "name": "n",
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": 77,
        "note": None,
        "branch": "渝中",
    }
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(evolved), record)
    value = frame(schema_id, body.getvalue())
    producer = bus.access.producer()
    producer.produce(
        bus.topics.source(ENTERPRISE),
        key=b"k77",
        value=value,
        headers=[(h.DATA_CLASS, ENTERPRISE.encode()), (h.RECORD_ID, b"r77")],
    )
    assert producer.flush(10) == 0

    letters = eventually(lambda: list_dead_letters(bus.access, bus.topics.dead_letter), lambda ls: len(ls) >= 1)
    assert [d.reason for d in letters] == ["schema_mismatch"]
    assert end_offsets(bus.access, bus.topics.delivery("tax-levy")) == 0

    # The fix: register the (compatible) new version under the class's own subject: same schema, same id.
    assert client.register_schema(bus.topics.value_subject(ENTERPRISE), Schema(evolved_text, "AVRO")) == schema_id
    assert replay(bus.access, bus.topics.dead_letter, letters) == 1

    [delivery] = receive_all(bus, "tax-levy", 1)
    # "branch" is not in the catalogue's schema of the class: no subscription or grant can name it.
    assert delivery.value == {k: v for k, v in record.items() if k != "branch"}
    assert delivery.record_id == "r77"
