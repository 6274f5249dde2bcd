"""Properties of the per-record path over random input (hypothesis), without Kafka.

For any headers, key and value: the handler does not raise; the record is dead-lettered once with a
reason from the closed set, or delivered to every entitled subscriber; every message fits the
producer's limit; and a delivery carries each bus header once, the router's values, never the publisher's.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.wire import frame
from sharebus_router.dead_letters import DLQ_REASON, DeadLetterReason
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import PRODUCER_LIMIT, TOPICS, Harness

ENTERPRISE = "301001001/000001"
BUS_NAMES = [
    h.DATA_CLASS,
    h.PROVIDER,
    h.TRACE_ID,
    h.RECORD_ID,
    h.PUBLISHED_NS,
    h.CONSUMER,
    h.MODE,
    h.GRANT_ID,
    h.ORIGIN,
    h.BATCH_ID,
    h.BATCH_START,
    h.BATCH_END_TIME,
    h.BATCH_COUNT,
    h.BATCH_SEQ,
    h.BATCH_END,
    h.BACKFILL,
    h.MARKER,
    h.MARKER_WINDOW,
    "sharebus-dlq-reason",
]
SUBSCRIBERS = {TOPICS.delivery("tax-levy"), TOPICS.delivery("psb-case")}


@cache
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


def good_value(seq: int, name: str) -> bytes:
    record = {
        "uscc": "U1",
        "name": name,
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": seq,
        "note": None,
    }
    return harness().encode(ENTERPRISE, record)


header_values = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.sampled_from([ENTERPRISE.encode(), b"301001002/000001", b"AMR", b"1700000000000000000", b"tax-levy", b""]),
    st.integers(min_value=0, max_value=2**70).map(lambda n: str(n).encode()),
)
headers_strategy = st.lists(
    st.tuples(st.one_of(st.sampled_from(BUS_NAMES), st.text(min_size=1, max_size=20)), header_values), max_size=8
)


@st.composite
def values(draw: st.DrawFn) -> bytes | None:
    # One record in ten is near the producer's limit (a megabyte each: more would only slow the test).
    name = draw(st.sampled_from(["n"] * 9 + ["x" * (PRODUCER_LIMIT - 300)]))
    good = good_value(draw(st.integers(0, 2**31)), name)
    kind = draw(st.sampled_from(["good", "truncated", "padded", "schema_id", "random", "none"]))
    if kind == "truncated":
        return good[: draw(st.integers(0, len(good) - 1))]
    if kind == "padded":
        return good + draw(st.binary(min_size=1, max_size=20))
    if kind == "schema_id":
        return frame(draw(st.integers(0, 2**32 - 1)), good[5:])
    if kind == "random":
        return draw(st.binary(max_size=64))
    return None if kind == "none" else good


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(headers=headers_strategy, key=st.one_of(st.none(), st.binary(max_size=16)), value=values())
def test_any_record_is_delivered_everywhere_or_dead_lettered_once(
    headers: list[tuple[str, bytes | None]], key: bytes | None, value: bytes | None
) -> None:
    bus = harness()
    bus.sent.clear()
    bus.handle_raw(ENTERPRISE, value, headers, key=key)  # never raises (the harness refuses oversized sends too)
    topics = [topic for topic, *_ in bus.sent]
    if topics == [TOPICS.dead_letter]:
        reason = dict(bus.sent[0][3])[DLQ_REASON].decode()
        assert reason in {r.value for r in DeadLetterReason}
        return
    assert sorted(topics) == sorted(SUBSCRIBERS), topics
    for topic, _key, _value, sent in bus.sent:
        bus_names = [name for name, _ in sent if name.startswith("sharebus-")]
        assert len(bus_names) == len(set(bus_names)), bus_names
        meta = dict(sent)
        assert meta[h.DATA_CLASS] == ENTERPRISE.encode()
        assert meta[h.PROVIDER] == b"AMR"
        assert meta[h.CONSUMER].decode() == topic.rsplit(".", 1)[-1]
        assert not {h.BATCH_ID, h.BATCH_END, h.BACKFILL, h.MARKER, h.ORIGIN} & set(meta)
        if h.PUBLISHED_NS in meta:
            assert meta[h.PUBLISHED_NS].isdigit()
