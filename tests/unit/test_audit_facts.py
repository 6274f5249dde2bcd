"""The auditor's fast path from a facts message to block bodies writes exactly what the reference path
(``json``, ``audit_events``, ``event_body``) writes, for any message: floats, long integers, odd text and
messages that are not the router's included; what cannot be read is refused, never half-taken."""

from __future__ import annotations

import datetime as dt
import gc
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sharebus_audit.auditor import MALFORMED, Auditor, _Pending
from sharebus_audit.facts import UNREADABLE, _EventTimes, audit_events, event_time, fact_bodies
from sharebus_core.audit_trail import event_body

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3))
# What the router writes and more: extra fields of any JSON type, floats and long integers among them.
TIMES = st.floats(min_value=-2e9, max_value=4e9, allow_nan=False) | st.integers(min_value=-(2**31), max_value=2**33)
DECISIONS = st.fixed_dictionaries(
    {
        "consumer": st.none() | TEXT,
        "grant_id": st.none() | TEXT,
        "decision": st.sampled_from(["deliver", "deny"]),
        "reason": st.none() | TEXT,
        "payload_sha256": st.none() | st.just("0" * 64),
    },
    optional={"extra": VALUES},
)
FACTS = st.fixed_dictionaries(
    {
        "time": TIMES,
        "provider": TEXT,
        "data_class": TEXT,
        "mode": st.sampled_from(["realtime", "batch"]),
        "key": st.none() | TEXT,
        "source": st.fixed_dictionaries(
            {"topic": TEXT, "partition": st.integers(0, 50), "offset": st.integers(0, 2**62)}
        ),
        "decisions": st.lists(DECISIONS, max_size=4),
    },
    optional={"quality": st.fixed_dictionaries({"failed": st.lists(TEXT), "filled": st.integers()}), "more": VALUES},
)


def reference(value: bytes, partition: int) -> tuple[list[bytes], dict[Any, int]]:
    events = audit_events(json.loads(value), partition)
    counts: dict[Any, int] = {}
    for event in events:
        counts[event["decision"]] = counts.get(event["decision"], 0) + 1
    return [event_body(event) for event in events], counts


def message(facts: list[dict[str, Any]]) -> bytes:
    return json.dumps({"records": facts}, ensure_ascii=False, separators=(",", ":")).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(FACTS, max_size=6), st.integers(0, 11))
@example([{"time": 1.5, "x": 1e-05, "decisions": [{"decision": "deliver"}]}], 0)
@example([{"time": 1.0, "n": 2**64 + 1, "decisions": [{"decision": "deliver"}]}], 3)
@example([{"time": 1733059200.9999996, "decisions": [{"decision": "deny", "t": "é\u2028\x00"}]}], 1)
def test_fact_bodies_writes_exactly_the_reference_bodies(facts: list[dict[str, Any]], partition: int) -> None:
    value = message(facts)
    assert fact_bodies(value, partition) == reference(value, partition)


@pytest.mark.parametrize(
    "value",
    [
        b'{"records":[{"time":NaN,"decisions":[{"decision":"deliver"}]}]}',  # orjson refuses, json reads
        b'{"records":[{"time":1,"n":Infinity,"decisions":[{"decision":"deliver"}]}]}',
        json.dumps({"records": [{"time": 1, "decisions": [{"decision": "deny"}]}]}).encode("utf-16"),
        b'{"records":[{"time":1,"decisions":[{"decision":"deliver","decision":"deny"}]}]}',
    ],
)
def test_what_orjson_will_not_read_is_read_as_it_always_was(value: bytes) -> None:
    try:
        expected = reference(value, 0)
    except UNREADABLE as exc:
        with pytest.raises(type(exc)):
            fact_bodies(value, 0)
    else:
        assert fact_bodies(value, 0) == expected


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"not json",
        b"[]",
        b'{"records":[1]}',  # a fact that is not an object (the auditor used to stop on it)
        b'{"records":[{"time":1e300,"decisions":[{"decision":"deliver"}]}]}',  # OverflowError
        b'{"records":[{"time":1e18,"decisions":[{"decision":"deliver"}]}]}',  # OSError
        b'{"records":[{"time":1e12,"decisions":[{"decision":"deliver"}]}]}',  # ValueError (year 33658)
        b'{"records":[{"time":"noon","decisions":[]}]}',
        b'{"records":[{"time":1,"decisions":[{"decision":"deliver","s":"\\ud800"}]}]}',  # a lone surrogate
        b'{"records":[{"time":1,"decisions":[{"decision":{"not":"hashable"}}]}]}',
        b'{"records":[{"time":1,"decisions":[7]}]}',
        b'{"records":[{"time":1}]}',
    ],
)
def test_an_unreadable_message_is_refused_whole_with_an_error_the_auditor_skips(value: bytes) -> None:
    with pytest.raises(UNREADABLE):
        fact_bodies(value, 0)


@settings(max_examples=1000, deadline=None)
@given(TIMES | st.floats(min_value=-1e10, max_value=1e11))
@example(1733059200.9999996)
@example(1733059200.9994999)
@example(-0.0000004)
@example(-1.5)
@example(True)
def test_event_times_are_datetimes_own_text(seconds: float) -> None:
    assert _EventTimes()(seconds) == event_time(seconds)


def test_event_times_refuse_what_datetime_refuses() -> None:
    times = _EventTimes()
    for bad in (float("nan"), float("inf"), 1e300, "noon", None):
        with pytest.raises(UNREADABLE):
            event_time(bad)
        with pytest.raises(UNREADABLE):
            times(bad)
    assert times(0) == dt.datetime.fromtimestamp(0, dt.UTC).isoformat(timespec="milliseconds")


def cut_one_at_a_time(messages: list[list[bytes]], max_events: int, max_bytes: int) -> list[tuple[bytes, list[bytes]]]:
    """The cut as the auditor made it before, one event at a time: (key, bodies) per block."""
    blocks: list[tuple[bytes, list[bytes], int]] = []
    for seq, bodies in enumerate(messages):
        for body in bodies:
            if blocks:
                key, block, used = blocks[-1]
                if len(block) < max_events and used + len(body) <= max_bytes:
                    blocks[-1] = (key, [*block, body], used + len(body))
                    continue
            blocks.append((f"k{seq}".encode(), [body], len(body)))
    return [(key, block) for key, block, _ in blocks]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.binary(min_size=1, max_size=300), max_size=30), max_size=8), st.integers(1, 7))
def test_adding_a_messages_bodies_at_once_cuts_the_blocks_one_at_a_time_did(
    messages: list[list[bytes]], max_events: int
) -> None:
    pending = _Pending(max_events, 700)
    for seq, bodies in enumerate(messages):
        pending.add_bodies(3, f"k{seq}".encode(), bodies)
    assert [(key, bodies) for _p, key, bodies in pending.blocks()] == cut_one_at_a_time(messages, max_events, 700)


class Fact:
    """A consumed facts message, as much of confluent-kafka's ``Message`` as ``Auditor._events`` reads."""

    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"t:0"

    def topic(self) -> str:
        return "ns.audit.facts"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41


def test_the_auditor_skips_and_counts_an_unreadable_message_and_chains_the_next() -> None:
    auditor = Auditor.__new__(Auditor)  # _events reads no setting and no client
    pending = _Pending(1000, 1 << 20)
    counts: dict[Any, int] = {}
    skipped = MALFORMED._value.get()
    good = message([{"time": 1.25, "decisions": [{"decision": "deliver"}, {"decision": "deny"}]}])
    assert auditor._events(Fact(b'{"records":[{"time":1,"decisions":[]},7]}'), pending, counts) == 0  # type: ignore[arg-type]
    assert pending.blocks() == []
    assert counts == {}
    assert MALFORMED._value.get() == skipped + 1
    assert auditor._events(Fact(good), pending, counts) == 2  # type: ignore[arg-type]
    assert counts == {"deliver": 1, "deny": 1}
    assert pending.blocks() == [(2, b"t:0", reference(good, 2)[0])]


def test_the_cycle_collector_is_as_it_was_after_a_message_read_or_refused() -> None:
    assert gc.isenabled()
    fact_bodies(message([{"time": 1, "decisions": [{"decision": "deliver"}]}]), 0)
    assert gc.isenabled()
    with pytest.raises(UNREADABLE):
        fact_bodies(b'{"records":[7]}', 0)
    assert gc.isenabled()
    gc.disable()
    try:
        fact_bodies(message([{"time": 1, "decisions": [{"decision": "deliver"}]}]), 0)
        assert not gc.isenabled()
    finally:
        gc.enable()
