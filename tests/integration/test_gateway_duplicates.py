"""Duplicates stop at the bus's edge: the gateway's feeds drop a record the router delivered twice."""

from __future__ import annotations

from sharebus_core.topic_reader import read_topic
from tests.integration.conftest import GatewayBus
from tests.integration.test_gateway_live import enterprise_json, publish
from tests.support.gateway import read_sse
from tests.support.kafka import end_offsets, eventually

ENTERPRISE = "301001001/000001"


def test_the_feed_drops_a_redelivered_record_by_its_record_id(gateway_bus: GatewayBus) -> None:
    bus = gateway_bus.bus
    topic = bus.topics.delivery("tax-levy")
    publish(gateway_bus, ENTERPRISE, [enterprise_json(seq) for seq in range(3)])
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 3) == 3
    # What a router crash before its commit leaves behind: the same deliveries written again.
    producer = bus.access.producer()
    for msg in read_topic(bus.access, topic):
        producer.produce(topic, key=msg.key(), value=msg.value(), headers=msg.headers(), partition=msg.partition() or 0)
    assert producer.flush(10) == 0
    publish(gateway_bus, ENTERPRISE, [enterprise_json(3)])
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 7) == 7

    with gateway_bus.client("tax-levy") as tax:
        events = read_sse(tax, "/v1/systems/tax-levy/feed", 7, timeout_s=15)
    assert sorted(e.data["value"]["seq"] for e in events) == [0, 1, 2, 3]
    assert len({e.data["record_id"] for e in events}) == 4
    assert None not in {e.data["record_id"] for e in events}
