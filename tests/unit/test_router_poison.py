"""Poison records on the router's per-record path, without Kafka: none raises, each is delivered or dead-lettered.

The harness's send refuses what the real producer refuses (aiokafka's size check), so a record that would
crash the route agent on the broker raises here.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_router.dead_letters import DLQ_REASON
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import PRODUCER_LIMIT, TOPICS, Harness

ENTERPRISE = "301001001/000001"
STATS = "301001004/000001"  # periodic: held, then released as batches
# Bus headers a publisher must not be able to set for the bus.
FORGED: list[tuple[str, bytes | None]] = [
    (h.PROVIDER, b"EVIL"),
    (h.CONSUMER, b"hrss-si"),
    (h.MODE, b"periodic"),
    (h.GRANT_ID, b"g-forged"),
    (h.BATCH_ID, b"301001005.000001@2026-01-01T00:00:00+08:00"),
    (h.BATCH_START, b"2026-01-01T00:00:00+08:00"),
    (h.BATCH_END_TIME, b"2026-01-01T01:00:00+08:00"),
    (h.BATCH_COUNT, b"0"),
    (h.BATCH_SEQ, b"0"),
    (h.BATCH_END, b"1"),
    (h.BACKFILL, b"bf-forged"),
    (h.MARKER, b"release"),
    (h.MARKER_WINDOW, b"{}"),
    (h.ORIGIN, b"{}"),
]
ROUTER_SET = {name for name, _ in FORGED} - {h.PROVIDER}


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


def enterprise(seq: int = 1, name: str = "n") -> dict[str, Any]:
    return {
        "uscc": "U1",
        "name": name,
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": seq,
        "note": None,
    }


def only_dead_letter(harness: Harness) -> dict[str, bytes]:
    [(topic, _key, _value, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    return h.header_map(headers)


def test_a_non_numeric_publish_time_is_dead_lettered_before_anything_is_delivered(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise())
    fact = harness.handle_raw(ENTERPRISE, value, [(h.DATA_CLASS, ENTERPRISE.encode()), (h.PUBLISHED_NS, b"soon")])
    assert fact is None
    meta = only_dead_letter(harness)
    assert meta[DLQ_REASON] == b"bad_header"
    assert harness.value("sharebus_dead_letters_total", {"data_class": ENTERPRISE, "reason": "bad_header"}) == 1


def test_a_class_label_without_a_value_is_dead_lettered(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise())
    assert harness.handle_raw(ENTERPRISE, value, [(h.DATA_CLASS, None)]) is None
    assert only_dead_letter(harness)[DLQ_REASON] == b"bad_header"


def test_a_record_whose_delivery_would_exceed_the_producer_limit_is_dead_lettered_whole(harness: Harness) -> None:
    # Fits as published; the router's own headers on the delivery push it over the producer's limit.
    value = harness.encode(ENTERPRISE, enterprise(name="x" * (PRODUCER_LIMIT - 200)))
    assert len(value) < PRODUCER_LIMIT - 100
    fact = harness.handle_raw(ENTERPRISE, value, [(h.DATA_CLASS, ENTERPRISE.encode()), (h.RECORD_ID, b"big")])
    assert fact is None
    # No subscriber got it (not one of two), and the dead letter itself fits: the value is left in the source.
    [(topic, _key, dead_value, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    assert dead_value is None
    assert h.header_map(headers)[DLQ_REASON] == b"too_large"


def test_a_periodic_record_that_could_not_be_released_is_not_held(harness: Harness) -> None:
    record = {"district_code": "x" * (PRODUCER_LIMIT - 300), "issued": 1, "seq": 1}
    harness.handle_raw(STATS, harness.encode(STATS, record), [(h.DATA_CLASS, STATS.encode())])
    assert only_dead_letter(harness)[DLQ_REASON] == b"too_large"


def test_bus_headers_on_a_delivery_are_the_routers_own(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise())
    harness.handle_raw(
        ENTERPRISE, value, [(h.DATA_CLASS, ENTERPRISE.encode()), *FORGED, (h.RECORD_ID, b"r1"), ("app", b"mine")]
    )
    assert [topic for topic, *_ in harness.sent] == [TOPICS.delivery("tax-levy"), TOPICS.delivery("psb-case")]
    for topic, _key, _value, headers in harness.sent:
        names = [name for name, _ in headers]
        bus_names = [n for n in names if n.startswith("sharebus-")]
        assert len(bus_names) == len(set(bus_names)), names
        meta = dict(headers)
        assert meta[h.PROVIDER] == b"AMR"
        assert meta[h.DATA_CLASS] == ENTERPRISE.encode()
        assert meta[h.CONSUMER] == topic.rsplit(".", 1)[-1].encode()
        assert meta[h.MODE] == b"realtime"
        assert not ROUTER_SET - {h.CONSUMER, h.MODE} & set(meta)
        assert meta[h.RECORD_ID] == b"r1"
        # The publisher's copies stay, under names that are plainly the publisher's.
        assert meta["publisher-" + h.BATCH_ID] == dict(FORGED)[h.BATCH_ID]
        assert meta["publisher-" + h.PROVIDER] == b"EVIL"
        assert meta["app"] == b"mine"


def test_a_forged_release_marker_on_a_periodic_record_is_not_a_marker_on_the_held_topic(harness: Harness) -> None:
    value = harness.encode(STATS, {"district_code": "500103", "issued": 1, "seq": 1})
    harness.handle_raw(STATS, value, [(h.DATA_CLASS, STATS.encode()), *FORGED])
    [(topic, key, _value, headers)] = harness.sent
    assert (topic, key) == (TOPICS.held, STATS.encode())
    meta = h.header_map(headers)
    assert h.MARKER not in meta
    assert h.BATCH_END not in meta
    assert json.loads(meta[h.ORIGIN])["offset"] == 0


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([(h.DATA_CLASS, ENTERPRISE.encode()), (h.DATA_CLASS, b"301001002/000001")], "bad_header"),
        ([(h.RECORD_ID, b"r" * 1000)], "bad_header"),
        ([(h.RECORD_ID, None)], "bad_header"),
        ([(h.TRACE_ID, b"\xff\xfe")], "bad_header"),
        ([(h.PUBLISHED_NS, b"-5")], "bad_header"),
        ([(h.PUBLISHED_NS, b"9" * 40)], "bad_header"),
        ([(h.DATA_CLASS, b"")], "unknown_data_class"),
    ],
)
def test_malformed_bus_headers_are_dead_lettered(
    harness: Harness, headers: list[tuple[str, bytes | None]], reason: str
) -> None:
    harness.handle_raw(ENTERPRISE, harness.encode(ENTERPRISE, enterprise()), headers)
    assert only_dead_letter(harness)[DLQ_REASON] == reason.encode()


def test_a_record_without_bus_headers_gets_them_from_the_router(harness: Harness) -> None:
    harness.handle_raw(ENTERPRISE, harness.encode(ENTERPRISE, enterprise()), [], key=None)
    assert len(harness.sent) == 2
    for _topic, _key, _value, headers in harness.sent:
        meta = dict(headers)
        assert (meta[h.DATA_CLASS], meta[h.PROVIDER]) == (ENTERPRISE.encode(), b"AMR")


def test_a_dead_letter_never_exceeds_the_limit_whatever_the_headers(harness: Harness) -> None:
    # Not wire format, with headers that alone nearly fill a message: the dead-letter headers would push it over.
    headers: list[tuple[str, bytes | None]] = [("blob", b"b" * 500_000), ("blob2", b"c" * (PRODUCER_LIMIT - 500_200))]
    harness.handle_raw(ENTERPRISE, b"junk", headers)
    meta = only_dead_letter(harness)
    assert meta[DLQ_REASON] == b"not_wire_format"
    assert meta["sharebus-dlq-omitted"] == b"value,headers"
