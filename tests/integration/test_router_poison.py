"""Poison records against the real router: none stops the stream, and a publisher cannot speak for the bus.

Each poison record is followed by good ones: they are delivered only if the route agent survived, and the
router's lag returns to 0 only if it keeps committing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sharebus_core import headers as h
from sharebus_core.registry_client import registry_client
from sharebus_core.wire import frame
from sharebus_ops.dlq import DeadLetter, list_dead_letters
from sharebus_router.periodic import batch_id
from sharebus_sdk import Delivery
from tests.integration.conftest import Bus, ClockedBus
from tests.support.kafka import end_offsets, eventually, read_all
from tests.support.raw_produce import produce_raw_header
from tests.support.router import router_lag
from tests.support.subscribe import collect

ENTERPRISE = "301001001/000001"
ROSTER = "301001005/000001"  # hourly periodic; tax-levy subscribes once granted
# What the router's producer may send (RouterSettings.max_message_bytes); the source record itself fits
# what a publisher may send, only the router's own headers push its delivery over.
LIMIT = 1_000_000
Headers = list[tuple[str, str | bytes | None]]


def enterprise(seq: int, name: str = "n") -> dict[str, Any]:
    return {
        "uscc": f"U{seq}",
        "name": name,
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": seq,
        "note": None,
    }


def encoder(bus: Bus, code: str) -> AvroSerializer:
    client = registry_client(bus.registry_url, bus.settings.registry_auth)
    serializer: AvroSerializer = AvroSerializer(
        client, bus.catalogue.schema(code).text, conf={"auto.register.schemas": False}
    )
    return serializer


def encode(bus: Bus, serializer: AvroSerializer, code: str, record: dict[str, Any]) -> bytes:
    value = serializer(record, SerializationContext(bus.topics.source(code), MessageField.VALUE))
    assert isinstance(value, bytes)
    return value


def dead_letters(bus: Bus, expected: int) -> list[DeadLetter]:
    found = eventually(lambda: list_dead_letters(bus.access, bus.topics.dead_letter), lambda ls: len(ls) >= expected)
    assert len(found) == expected, [(d.reason, d.detail) for d in found]
    return found


def test_poison_records_neither_stop_nor_stall_the_route_agent(bus: Bus) -> None:
    serializer = encoder(bus, ENTERPRISE)
    label = (h.DATA_CLASS, ENTERPRISE.encode())
    good = encode(bus, serializer, ENTERPRISE, enterprise(0))
    # A value that fits what a publisher may send (1,000,000 bytes with its key and headers, librdkafka's
    # default); the ~200 bytes of the router's headers and framing push its delivery over the producer's limit.
    big = encode(bus, serializer, ENTERPRISE, enterprise(0, name="x" * (LIMIT - 130)))
    assert LIMIT - 200 < len(big) < LIMIT - 50
    poison: list[tuple[str, bytes | None, Headers]] = [
        ("bad_header", good, [label, (h.PUBLISHED_NS, b"not-a-number")]),
        ("bad_header", good, [(h.DATA_CLASS, None)]),
        ("too_large", big, [label]),
        ("unknown_schema_id", frame(3_999_999_999, good[5:]), [label]),
    ]
    producer = bus.access.producer({"linger.ms": 5})
    for n, (_reason, value, headers) in enumerate(poison):
        producer.produce(bus.topics.source(ENTERPRISE), key=f"poison-{n}".encode(), value=value, headers=headers)
    for seq in range(1, 6):
        value = encode(bus, serializer, ENTERPRISE, enterprise(seq))
        producer.produce(bus.topics.source(ENTERPRISE), key=f"good-{seq}".encode(), value=value, headers=[label])
    assert producer.flush(30) == 0

    topic = bus.topics.delivery("psb-case")
    delivered = eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 5)
    assert delivered == 5, [(m.key(), m.headers()) for m in read_all(bus.access, topic, delivered, timeout_s=10)]
    letters = dead_letters(bus, len(poison))
    assert {d.key: d.reason for d in letters} == {f"poison-{n}".encode(): r for n, (r, _, _) in enumerate(poison)}
    oversized = next(d for d in letters if d.reason == "too_large")
    # The dead letter itself fits: the value stays in the source topic, where the dead letter points.
    assert oversized.value is None
    assert oversized.source_topic == bus.topics.source(ENTERPRISE)
    assert eventually(lambda: router_lag(bus.access, bus.namespace, [ENTERPRISE]), lambda lag: lag == 0) == 0
    received = collect(bus.settings, "psb-case", 5)
    assert sorted(d.value["seq"] for d in received.deliveries) == [1, 2, 3, 4, 5]


FORGED: Headers = [
    (h.PROVIDER, b"PSB"),
    (h.CONSUMER, b"hrss-si"),
    (h.MODE, b"periodic"),
    (h.GRANT_ID, b"g-forged"),
    (h.BACKFILL, b"bf-forged"),
    (h.BATCH_ID, b"forged"),
    (h.BATCH_START, b"2026-01-01T00:00:00+08:00"),
    (h.BATCH_END_TIME, b"2026-01-01T01:00:00+08:00"),
    (h.BATCH_COUNT, b"0"),
    (h.BATCH_END, b"1"),
]


def test_a_publisher_cannot_set_the_bus_headers_its_subscribers_see(bus: Bus) -> None:
    serializer = encoder(bus, ENTERPRISE)
    producer = bus.access.producer({"linger.ms": 5})
    for seq in range(3):
        value = encode(bus, serializer, ENTERPRISE, enterprise(seq))
        headers: Headers = [(h.DATA_CLASS, ENTERPRISE.encode()), (h.RECORD_ID, f"r{seq}".encode()), *FORGED]
        producer.produce(bus.topics.source(ENTERPRISE), key=f"k{seq}".encode(), value=value, headers=headers)
    assert producer.flush(30) == 0

    topic = bus.topics.delivery("psb-case")
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 3) == 3
    for message in read_all(bus.access, topic, 3):
        names = [name for name, _ in h.header_list(message.headers())]
        bus_names = [name for name in names if name.startswith("sharebus-")]
        assert len(bus_names) == len(set(bus_names)), names
        meta = h.header_map(message.headers())
        assert (meta[h.PROVIDER], meta[h.CONSUMER], meta[h.MODE]) == (b"AMR", b"psb-case", b"realtime")
        assert not {h.GRANT_ID, h.BACKFILL, h.BATCH_ID, h.BATCH_END, h.BATCH_COUNT} & set(meta)
        # The publisher's copies are kept, under names that say whose they are.
        assert meta["publisher-" + h.PROVIDER] == b"PSB"
        assert meta["publisher-" + h.BATCH_END] == b"1"
    received = collect(bus.settings, "psb-case", 3)
    assert not received.batches
    assert {(d.provider, d.consumer, d.mode, d.backfill) for d in received.deliveries} == {
        ("AMR", "psb-case", "realtime", None)
    }


def test_a_forged_batch_end_cannot_cut_short_another_class_batch(clocked: ClockedBus) -> None:
    from tests.integration.test_periodic import approve_roster_grant, held, roster

    bus = clocked.bus
    approve_roster_grant(bus)
    window = clocked.window(ROSTER)
    roster_encoder, enterprise_encoder = encoder(bus, ROSTER), encoder(bus, ENTERPRISE)
    producer = bus.access.producer({"linger.ms": 5})
    for seq in range(3):
        value = encode(bus, roster_encoder, ROSTER, roster(seq))
        headers: Headers = [(h.DATA_CLASS, ROSTER.encode()), (h.RECORD_ID, f"roster-{seq}".encode())]
        producer.produce(bus.topics.source(ROSTER), key=b"r", value=value, headers=headers)
    # A real-time record of another class, dressed as the end of ROSTER's batch with no records in it.
    forged: Headers = [
        (h.DATA_CLASS, ENTERPRISE.encode()),
        (h.RECORD_ID, b"forger"),
        (h.BATCH_ID, batch_id(ROSTER, window).encode()),
        (h.BATCH_START, window.start.isoformat().encode()),
        (h.BATCH_END_TIME, window.end.isoformat().encode()),
        (h.BATCH_COUNT, b"0"),
        (h.BATCH_END, b"1"),
    ]
    value = encode(bus, enterprise_encoder, ENTERPRISE, enterprise(9))
    producer.produce(bus.topics.source(ENTERPRISE), key=b"e", value=value, headers=forged)
    assert producer.flush(30) == 0
    assert held(bus, 3) == 3
    assert eventually(lambda: end_offsets(bus.access, bus.topics.delivery("tax-levy")), lambda n: n >= 1) >= 1

    clocked.move_clock_past(window.end)
    received = collect(bus.settings, "tax-levy", 1, expected_batches=1)
    assert [b.batch_id for b in received.batches] == [batch_id(ROSTER, window)]
    assert sorted(r.value["seq"] for r in received.batches[0].records) == [0, 1, 2]
    assert [(d.data_class, d.value["seq"]) for d in received.deliveries if isinstance(d, Delivery)] == [(ENTERPRISE, 9)]


def test_a_header_name_that_is_not_utf8_is_dead_lettered_and_the_stream_goes_on(bus: Bus) -> None:
    # confluent-kafka raises SystemError reading such a header; the router used to end, and end again after
    # every restart, on the same record.
    serializer = encoder(bus, ENTERPRISE)
    source = bus.topics.source(ENTERPRISE)
    before = encode(bus, serializer, ENTERPRISE, enterprise(1))
    producer = bus.access.producer({"linger.ms": 5})
    producer.produce(source, key=b"before", value=before, headers=[(h.DATA_CLASS, ENTERPRISE.encode())])
    assert producer.flush(30) == 0
    bad = encode(bus, serializer, ENTERPRISE, enterprise(2))
    produce_raw_header(bus.access, source, b"bad-name", bad, b"\xff\xfe-name", b"x")
    for seq in (3, 4):
        value = encode(bus, serializer, ENTERPRISE, enterprise(seq))
        producer.produce(
            source, key=f"after-{seq}".encode(), value=value, headers=[(h.DATA_CLASS, ENTERPRISE.encode())]
        )
    assert producer.flush(30) == 0

    [letter] = dead_letters(bus, 1)
    assert (letter.key, letter.reason, letter.source_topic) == (b"bad-name", "bad_header", source)
    assert "headers cannot be read" in letter.detail
    assert letter.value == bad
    assert letter.original_headers == ()
    assert eventually(lambda: router_lag(bus.access, bus.namespace, [ENTERPRISE]), lambda lag: lag == 0) == 0
    received = collect(bus.settings, "psb-case", 3)
    assert sorted(d.value["seq"] for d in received.deliveries) == [1, 3, 4]
