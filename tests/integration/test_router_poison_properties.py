"""Hundreds of random records, most of them poison, against the real router on the real broker (hypothesis).

Each case's kind decides its outcome: delivered to both subscribers of the class, or dead-lettered with the
reason its kind implies. Every case is produced first, then the test waits on conditions: all cases
accounted for, each exactly where its kind says, and the router's lag back at 0 (it kept committing).
"""

from __future__ import annotations

import string
from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sharebus_core import headers as h
from sharebus_core.wire import frame
from sharebus_ops.dlq import list_dead_letters
from tests.integration.conftest import Bus
from tests.integration.test_router_poison import LIMIT, Headers, encode, encoder, enterprise
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.router import router_lag

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"
CASES = 300
DELIVERED = "delivered"
SUBSCRIBERS = ("tax-levy", "psb-case")
# Bus headers only the router sets: a publisher's copies are harmless (renamed), so any case may carry them.
ROUTER_SET = [
    h.PROVIDER,
    h.CONSUMER,
    h.MODE,
    h.GRANT_ID,
    h.KEY_WITHHELD,
    h.BATCH_ID,
    h.BATCH_END,
    h.BATCH_COUNT,
    h.BACKFILL,
    h.MARKER,
]
# Weights by repetition; the oversized kind is rare, as each case is a megabyte.
KINDS = [
    *["good"] * 12,
    *["truncated", "padded", "unknown_schema_id", "other_class_schema", "other_class_label", "unknown_label"] * 2,
    *["not_wire", "null", "bad_published_ns", "valueless_class", "long_record_id", "repeated_record_id"] * 2,
    "oversized",
]


@dataclass(frozen=True)
class Case:
    kind: str
    value: bytes | None
    headers: Headers
    expected: str


class Values:
    """Encoded records of the bus's registry, made once (encoding a megabyte record per case would be slow)."""

    def __init__(self, bus: Bus) -> None:
        self.enterprise = encoder(bus, ENTERPRISE)
        self.bus = bus
        self.good = {seq: encode(bus, self.enterprise, ENTERPRISE, enterprise(seq)) for seq in range(20)}
        penalty = {"uscc": "U1", "person_id_number": "11010519491231002X", "amount": 1.0, "seq": 1}
        self.penalty = encode(bus, encoder(bus, PENALTY), PENALTY, penalty)
        self.oversized = encode(bus, self.enterprise, ENTERPRISE, enterprise(0, name="x" * (LIMIT - 130)))


header_names = st.text(alphabet=string.ascii_letters + string.digits + "-_.数据", min_size=1, max_size=20).filter(
    lambda name: not name.startswith("sharebus-")
)
noise = st.lists(
    st.tuples(st.one_of(header_names, st.sampled_from(ROUTER_SET)), st.one_of(st.none(), st.binary(max_size=30))),
    max_size=5,
)


def poisoned(values: Values, kind: str, draw: st.DrawFn) -> tuple[bytes | None, Headers, str]:
    """(value, the kind's own headers, expected outcome) of one case."""
    label: Headers = [(h.DATA_CLASS, ENTERPRISE.encode())]
    good = values.good[draw(st.integers(0, 19))]
    body_cases: dict[str, tuple[bytes | None, str]] = {
        "good": (good, DELIVERED),
        "truncated": (good[: draw(st.integers(5, len(good) - 1))], "schema_invalid"),
        "padded": (good + draw(st.binary(min_size=1, max_size=16)), "schema_invalid"),
        "unknown_schema_id": (frame(draw(st.integers(2_000_000_000, 2**32 - 1)), good[5:]), "unknown_schema_id"),
        "other_class_schema": (values.penalty, "schema_mismatch"),
        "not_wire": (draw(st.binary(max_size=40).filter(lambda b: len(b) < 5 or b[0] != 0)), "not_wire_format"),
        "null": (None, "not_wire_format"),
        "oversized": (values.oversized, "too_large"),
    }
    if kind in body_cases:
        value, expected = body_cases[kind]
        return value, label if draw(st.booleans()) else [], expected
    header_cases: dict[str, tuple[Headers, str]] = {
        "other_class_label": ([(h.DATA_CLASS, PENALTY.encode())], "class_mismatch"),
        "unknown_label": ([(h.DATA_CLASS, b"999999999/000009")], "unknown_data_class"),
        "bad_published_ns": ([*label, (h.PUBLISHED_NS, draw(st.text(string.ascii_letters, min_size=1)).encode())], ""),
        "valueless_class": ([(h.DATA_CLASS, None)], ""),
        "long_record_id": ([*label, (h.RECORD_ID, b"r" * draw(st.integers(201, 2000)))], ""),
        "repeated_record_id": ([*label, (h.RECORD_ID, b"a"), (h.RECORD_ID, b"b")], ""),
    }
    headers, expected = header_cases[kind]
    return good, headers, expected or "bad_header"


@st.composite
def cases(draw: st.DrawFn, values: Values) -> Case:
    kind = draw(st.sampled_from(KINDS))
    value, own, expected = poisoned(values, kind, draw)
    # Publisher-chosen noise, and copies of router-set headers, shuffled in among the kind's own headers
    # (not on an oversized record: it has no room left under what a publisher may send).
    extra = draw(noise) if kind != "oversized" else []
    headers = draw(st.permutations([*own, *extra]))
    return Case(kind, value, headers, expected)


def produce_cases(bus: Bus, values: Values) -> dict[bytes, Case]:
    produced: dict[bytes, Case] = {}
    producer = bus.access.producer({"linger.ms": 20})
    topic = bus.topics.source(ENTERPRISE)

    @settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(case=cases(values))
    def produce(case: Case) -> None:
        key = f"case-{len(produced)}".encode()
        produced[key] = case
        producer.produce(topic, key=key, value=case.value, headers=case.headers)
        producer.poll(0)

    produce()
    assert producer.flush(60) == 0
    return produced


def keys_delivered(bus: Bus, system: str) -> Counter[bytes]:
    topic = bus.topics.delivery(system)
    return Counter(m.key() or b"" for m in read_all(bus.access, topic, end_offsets(bus.access, topic), timeout_s=30))


def test_every_random_record_is_delivered_or_dead_lettered_with_its_reason(bus: Bus) -> None:
    produced = produce_cases(bus, Values(bus))
    assert len(produced) == CASES
    url = bus.router.metrics_url
    routed = eventually(
        lambda: metric(url, "sharebus_records_received_total") + metric(url, "sharebus_dead_letters_total"),
        lambda n: n >= CASES,
    )
    assert routed == CASES
    assert eventually(lambda: router_lag(bus.access, bus.namespace, [ENTERPRISE]), lambda lag: lag == 0) == 0

    letters = {d.key: d.reason for d in list_dead_letters(bus.access, bus.topics.dead_letter)}
    delivered = {system: keys_delivered(bus, system) for system in SUBSCRIBERS}
    wrong = []
    for key, case in produced.items():
        if case.expected == DELIVERED:
            outcome = "delivered" if all(delivered[s][key] == 1 for s in SUBSCRIBERS) else letters.get(key, "lost")
        else:
            outcome = letters.get(key, "lost") if not any(delivered[s][key] for s in SUBSCRIBERS) else "delivered"
        if outcome != case.expected:
            wrong.append((key, case.kind, case.expected, outcome, case.headers[:6]))
    assert not wrong, wrong[:10]
    assert len(letters) == sum(case.expected != DELIVERED for case in produced.values())
