"""The first share across the bus, on the real broker: publish -> route -> deliver -> count."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sharebus_core import headers as h
from sharebus_core.records import RecordInvalid
from sharebus_router.dead_letters import DLQ_DATA_CLASS, DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_TOPIC
from sharebus_sdk import Delivery, NotProvider, Publisher, PublisherSettings
from tests.integration.conftest import Bus
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.subscribe import collect

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"  # conditional: no grant can exist yet
INSPECTION = "301001003/000001"  # not shared
LICENCE_STATS = "301001004/000001"  # periodic
COUNT = 1000


def enterprise(seq: int) -> dict[str, Any]:
    return {
        "uscc": f"91500000MA{seq:07d}X",
        "name": f"重庆测试企业{seq}有限公司",
        "legal_rep_name": "张三",
        "registered_capital": 100.0 + seq,
        "established": dt.date(2020, 1, 1) + dt.timedelta(days=seq % 365),
        "seq": seq,
        "note": None if seq % 2 else f"note {seq}",
    }


def publisher(bus: Bus, department: str = "AMR") -> Publisher:
    return Publisher(department, PublisherSettings.model_validate(bus.settings.model_dump()), bus.catalogue)


def receive(bus: Bus, system: str, expected: int) -> list[Delivery]:
    return collect(bus.settings, system, expected, idle_timeout_s=15).deliveries


def test_records_arrive_decoded_and_complete_at_each_subscriber_and_nowhere_else(bus: Bus) -> None:
    sent = [enterprise(i) for i in range(COUNT)]
    with publisher(bus) as pub:
        record_ids = [pub.publish(ENTERPRISE, record, trace_id=f"trace-{record['seq']}") for record in sent]

    for system in ("tax-levy", "psb-case"):
        deliveries = receive(bus, system, COUNT)
        assert len(deliveries) == COUNT, f"{system} received {len(deliveries)} of {COUNT}"
        by_seq = {d.value["seq"]: d for d in deliveries}
        assert sorted(by_seq) == list(range(COUNT))
        for record, record_id in zip(sent, record_ids, strict=True):
            delivery = by_seq[record["seq"]]
            assert delivery.value == record
            assert delivery.data_class == ENTERPRISE
            assert delivery.provider == "AMR"
            assert delivery.consumer == system
            assert delivery.mode == "realtime"
            assert delivery.record_id == record_id
            assert delivery.trace_id == f"trace-{record['seq']}"
            assert delivery.key == record["uscc"]

    # hrss-si subscribes to nothing forwarded; amr-reg is the provider itself.
    assert end_offsets(bus.access, bus.topics.delivery("hrss-si")) == 0
    assert end_offsets(bus.access, bus.topics.delivery("amr-reg")) == 0


def test_counters_show_exactly_what_was_delivered(bus: Bus) -> None:
    with publisher(bus) as pub:
        for i in range(COUNT):
            pub.publish(ENTERPRISE, enterprise(i))
    url = bus.router.metrics_url
    received = eventually(
        lambda: metric(url, "sharebus_records_received_total", data_class=ENTERPRISE), lambda v: v >= COUNT
    )
    assert received == COUNT
    for system in ("tax-levy", "psb-case"):
        labels = {
            "provider": "AMR",
            "consumer": system,
            "data_class": ENTERPRISE,
            "share_type": "unconditional",
            "mode": "realtime",
        }
        assert metric(url, "sharebus_records_total", **labels) == COUNT
        assert metric(url, "sharebus_calls_total", **labels) == COUNT
    assert metric(url, "sharebus_records_total", consumer="hrss-si") == 0
    assert metric(url, "sharebus_denials_total") == 0
    assert metric(url, "sharebus_publish_to_route_seconds_count", mode="realtime") == COUNT
    # The data path counts what it read from the sources (Faust's sensor counts only its control topics now).
    assert metric(url, "sharebus_router_consumed_records_total") >= COUNT
    assert metric(url, "sharebus_router_source_partitions") >= 1


@pytest.mark.parametrize(
    ("class_code", "record", "consumer", "reason"),
    [
        (
            PENALTY,
            {"uscc": "91500000MA0000001X", "person_id_number": "11010519491231002X", "amount": 5.0},
            "tax-levy",
            "no_grant",
        ),
        (INSPECTION, {"uscc": "91500000MA0000001X", "note": "internal"}, "psb-case", "class_not_shared"),
    ],
)
def test_record_of_a_class_not_forwarded_arrives_nowhere_and_is_denied(
    bus: Bus, class_code: str, record: dict[str, Any], consumer: str, reason: str
) -> None:
    with publisher(bus) as pub:
        for seq in range(5):
            pub.publish(class_code, {**record, "seq": seq})
    url = bus.router.metrics_url
    labels = {"provider": "AMR", "consumer": consumer, "data_class": class_code, "reason": reason}
    denied = eventually(lambda: metric(url, "sharebus_denials_total", **labels), lambda v: v >= 5)
    assert denied == 5
    assert metric(url, "sharebus_records_received_total", data_class=class_code) == 5
    assert metric(url, "sharebus_records_total", data_class=class_code) == 0
    for system in bus.catalogue.systems:
        assert end_offsets(bus.access, bus.topics.delivery(system)) == 0, system


def test_bad_bytes_go_to_the_dead_letter_topic_with_their_origin(bus: Bus) -> None:
    source = bus.topics.source(ENTERPRISE)
    producer = bus.access.producer()
    producer.produce(source, value=b'{"json": "is not the wire format"}', key=b"k1", partition=0)
    producer.produce(source, value=b"\x00\x00\x01\x86\xa0garbage", key=b"k2", partition=0)  # schema id 100000
    assert producer.flush(10) == 0
    with publisher(bus) as pub:
        pub.publish(ENTERPRISE, enterprise(7))

    letters = read_all(bus.access, bus.topics.dead_letter, expected=2)
    reasons = {}
    for letter in letters:
        meta = h.header_map(letter.headers())
        reasons[letter.key()] = meta[DLQ_REASON].decode()
        assert meta[DLQ_SOURCE_TOPIC].decode() == source
        assert meta[DLQ_DATA_CLASS].decode() == ENTERPRISE
        assert meta[DLQ_SOURCE_OFFSET] in (b"0", b"1")
    assert reasons == {b"k1": "not_wire_format", b"k2": "unknown_schema_id"}
    # The two letters have different keys, so they may sit in different partitions of the dead-letter topic.
    assert {letter.key(): letter.value() for letter in letters}[b"k1"] == b'{"json": "is not the wire format"}'
    url = bus.router.metrics_url
    assert metric(url, "sharebus_dead_letters_total", reason="not_wire_format") == 1
    assert metric(url, "sharebus_dead_letters_total", reason="unknown_schema_id") == 1
    # The good record behind the bad ones still went through.
    assert len(receive(bus, "tax-levy", 1)) == 1


def test_publisher_refuses_invalid_records_and_other_departments_classes(bus: Bus) -> None:
    with publisher(bus) as pub:
        bad = {**enterprise(1), "registered_capital": "a lot"}
        with pytest.raises(RecordInvalid) as info:
            pub.publish(ENTERPRISE, bad)
        assert info.value.field == "registered_capital"
        missing = enterprise(2)
        del missing["name"]
        with pytest.raises(RecordInvalid, match="'name': is required"):
            pub.publish(ENTERPRISE, missing)
    with publisher(bus, "TAX") as tax, pytest.raises(NotProvider, match="its provider is AMR"):
        tax.publish(ENTERPRISE, enterprise(3))
    assert end_offsets(bus.access, bus.topics.source(ENTERPRISE)) == 0
