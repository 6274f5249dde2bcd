"""Duplicates stop at the bus's edge: feeds drop redeliveries, a retried publish adds nothing, and a
batch is published all or nothing."""

from __future__ import annotations

import pytest
from confluent_kafka import Message

from sharebus_core import headers as h
from sharebus_core.topic_reader import read_topic
from sharebus_sdk import Publisher, PublisherSettings
from tests.integration.conftest import Bus, GatewayBus
from tests.integration.test_gateway_live import enterprise_json, publish
from tests.support.gateway import read_sse
from tests.support.kafka import end_offsets, eventually
from tests.support.names import unique
from tests.support.records import enterprise
from tests.support.subscribe import collect

ENTERPRISE = "301001001/000001"


def committed(bus: Bus, topic: str) -> list[Message]:
    """The committed records of a topic (the gateway publishes in transactions)."""
    return read_topic(bus.access, topic, isolation="read_committed")


def test_the_feed_drops_a_redelivered_record_by_its_providers_class_and_record_id(gateway_bus: GatewayBus) -> None:
    bus = gateway_bus.bus
    topic = bus.topics.delivery("tax-levy")
    publish(gateway_bus, ENTERPRISE, [enterprise_json(seq) for seq in range(3)])
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 3) == 3
    # What a router crash before its commit leaves behind: the same deliveries written again.
    producer = bus.access.producer()
    delivered = read_topic(bus.access, topic)
    for msg in delivered:
        producer.produce(topic, key=msg.key(), value=msg.value(), headers=msg.headers(), partition=msg.partition() or 0)
    # Another provider's record that happens to carry the same record id: not a repeat.
    other: list[tuple[str, str | bytes | None]] = [
        (k, b"OTHER" if k == h.PROVIDER else v) for k, v in h.header_list(delivered[0].headers())
    ]
    producer.produce(topic, key=delivered[0].key(), value=delivered[0].value(), headers=other)
    assert producer.flush(10) == 0
    publish(gateway_bus, ENTERPRISE, [enterprise_json(3)])
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 8) == 8

    with gateway_bus.client("tax-levy") as tax:
        events = read_sse(tax, "/v1/systems/tax-levy/feed", 8, timeout_s=15)
    assert sorted(e.data["value"]["seq"] for e in events) == [0, 0, 1, 2, 3]
    assert sorted(e.data["provider"] for e in events) == ["AMR"] * 4 + ["OTHER"]
    assert len({e.data["record_id"] for e in events}) == 4
    assert None not in {e.data["record_id"] for e in events}


def test_a_publish_retried_with_the_same_idempotency_key_publishes_nothing_new(gateway_bus: GatewayBus) -> None:
    bus = gateway_bus.bus
    source = bus.topics.source(ENTERPRISE)
    path = f"/v1/classes/{ENTERPRISE}/records"
    records = [enterprise_json(seq) for seq in range(3)]
    with gateway_bus.client("amr-reg") as amr:
        first = amr.post(path, json=records, headers={"Idempotency-Key": "upload-42"})
        assert first.status_code == 200, first.text
        assert len(eventually(lambda: committed(bus, source), lambda found: len(found) >= 3)) == 3
        retry = amr.post(path, json=records, headers={"Idempotency-Key": "upload-42"})
        assert retry.status_code == 200, retry.text
        assert retry.json()["record_ids"] == first.json()["record_ids"]
        reused = amr.post(path, json=records[:1], headers={"Idempotency-Key": "upload-42"})
        assert reused.status_code == 422
        assert "different body" in reused.text
        # Another key is another publish: it is the marker that the retry's records would have come before.
        other = amr.post(path, json=[enterprise_json(9)], headers={"Idempotency-Key": "upload-43"})
        assert other.status_code == 200, other.text
    # Offsets are no count here: each transaction's commit marker takes one too.
    ids = [dict(m.headers() or []).get("sharebus-record-id") for m in committed(bus, source)]
    assert len(ids) == 4
    assert len(set(ids)) == 4


def test_a_batch_that_fails_half_way_publishes_nothing(gateway_bus: GatewayBus) -> None:
    bus = gateway_bus.bus
    source = bus.topics.source(ENTERPRISE)
    # The third record is valid but over the producer's message limit (1,000,000 bytes): Kafka refuses
    # it after the first two were produced. The body stays under the gateway's 1 MiB limit.
    batch = [enterprise_json(0), enterprise_json(1), enterprise_json(2, name="x" * 1_000_000)]
    with gateway_bus.client("amr-reg") as amr:
        failed = amr.post(f"/v1/classes/{ENTERPRISE}/records", json=batch)
        assert failed.status_code == 503, failed.text
    publish(gateway_bus, ENTERPRISE, [enterprise_json(3)])

    # Records are keyed by their uscc, U<seq>.
    found = eventually(lambda: committed(bus, source), lambda records: len(records) >= 1)
    assert [m.key() for m in found] == [b"U3"]
    assert "nothing was published" in failed.text


class Abort(Exception):
    pass


def test_the_router_never_routes_the_records_of_an_aborted_transaction(bus: Bus) -> None:
    settings = PublisherSettings.model_validate(bus.settings.model_dump())
    with Publisher("AMR", settings, bus.catalogue, transactional_id=unique("amr-tx")) as pub:

        def publish_then_fail() -> None:
            with pub.transaction():
                for seq in range(20):
                    pub.publish(ENTERPRISE, enterprise(seq))
                pub._producer.flush(30)  # in the log, then aborted: what a read_uncommitted reader routes
                raise Abort

        with pytest.raises(Abort):
            publish_then_fail()
        with pub.transaction():
            for seq in range(20, 50):
                pub.publish(ENTERPRISE, enterprise(seq))
    # Thirty later records reach every partition (all but surely), and each partition is routed in
    # order, so once they have all arrived the aborted ones would have arrived before them.
    received = collect(bus.settings, "tax-levy", 30)
    assert sorted(d.value["seq"] for d in received.deliveries) == list(range(20, 50))
    assert end_offsets(bus.access, bus.topics.delivery("tax-levy")) == 30
