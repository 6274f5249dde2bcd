"""A window is released whole and once although one of its records cannot be, and every distinct record is in it.

One record that fails to render (or to fit a message) used to fail every release of its window, retried each
second for good; now it is dead-lettered alone. Repeats were recognised by the publisher's record id, so
distinct records sharing one were dropped; now only a source record held twice (same origin) is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any, cast

import pytest
from confluent_kafka import Message

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.headers import HeaderList
from sharebus_router.dead_letters import DLQ_DETAIL, DLQ_REASON, DLQ_SOURCE_OFFSET
from sharebus_router.held_records import HeldRecord, Origin, held_records
from sharebus_router.periodic import HoldState, on_release
from sharebus_router.projector import render
from sharebus_router.release import BatchReleaser
from sharebus_router.routes import Target
from sharebus_rules.periods import Window, window_containing
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import PRODUCER_LIMIT, TOPICS, Harness
from tests.unit.test_router_release import ROSTER, STATS, releaser, roster, roster_grant

Sent = tuple[str, bytes | None, bytes | None, HeaderList]


@pytest.fixture
def harness() -> Harness:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    harness.grant(roster_grant())
    return harness


def window_of(harness: Harness, code: str) -> Window:
    return window_containing(harness.catalogue.data_class(code).update, dt.datetime.fromtimestamp(harness.now, dt.UTC))


def to(harness: Harness, topic: str) -> list[Sent]:
    return [sent for sent in harness.sent if sent[0] == topic]


def roster_seqs(harness: Harness, deliveries: list[Sent]) -> list[int]:
    return [harness.decode(value)["seq"] for _t, _k, value, _h in deliveries if value is not None]


def attempt(
    harness: Harness,
    batches: BatchReleaser,
    window: Window,
    state: HoldState,
    marker_offset: int,
    held: list[HeldRecord],
) -> HoldState:
    """One release marker as holding.py's ``hold`` agent applies it: the state moves on only once the release
    went through; a failed one leaves it, so the timer's next marker tries again."""
    policy = harness.catalogue.data_class(ROSTER).update
    # Every marker names the ended window; the clock stands at its end.
    due = on_release(state, window.window_id, marker_offset, policy, window.end)
    if due is None:
        return state
    try:
        asyncio.run(batches.release(ROSTER, due.window, held))
    except Exception:  # noqa: BLE001 - as holding.py: whatever fails, the next marker retries
        return state
    return due.after


def roster_held(harness: Harness, seqs: range) -> list[HeldRecord]:
    return [
        HeldRecord(
            f"U{seq}".encode(),
            harness.encode(ROSTER, roster(seq)),
            [(h.RECORD_ID, f"r{seq}".encode())],
            TOPICS.source(ROSTER),
            0,
            seq,
        )
        for seq in seqs
    ]


def poisoned(monkeypatch: pytest.MonkeyPatch, held: list[HeldRecord], index: int = 1) -> bytes | None:
    """Makes the held record at ``index`` one the release cannot render; returns its value."""
    poison = held[index].value

    def failing(target: Target, value: dict[str, Any], published: bytes | None) -> bytes | None:
        # What fastavro raises for a value the projection's schema cannot take.
        if published == poison:
            raise TypeError("an integer is required on field seq")
        return render(target, value, published)

    monkeypatch.setattr("sharebus_router.release.render", failing)
    return poison


def test_a_record_that_cannot_be_rendered_is_dead_lettered_and_the_rest_released_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = roster_held(harness, range(3))
    poison = poisoned(monkeypatch, held)
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    harness.sent.clear()
    state = HoldState(window, 0, 0)
    # The release marker, then a repeat of it (the next tick, or a replay after a crash).
    for marker_offset in (10, 11):
        state = attempt(harness, batches, window, state, marker_offset, held)

    assert state.window.start == window.end  # released: the state moved to the next window
    *records, (_t, _k, end_value, end) = to(harness, TOPICS.delivery("tax-levy"))
    assert roster_seqs(harness, records) == [0, 2]
    assert [dict(headers)[h.BATCH_SEQ] for _t, _k, _v, headers in records] == [b"0", b"1"]
    assert (end_value, dict(end)[h.BATCH_END], dict(end)[h.BATCH_COUNT]) == (None, b"1", b"2")
    [(_t, key, value, headers)] = to(harness, TOPICS.dead_letter)
    dead = dict(headers)
    assert (key, value, dead[DLQ_REASON], dead[DLQ_SOURCE_OFFSET]) == (b"U1", poison, b"unprocessable", b"1")
    assert dead[DLQ_DETAIL] == b"TypeError: an integer is required on field seq"
    assert harness.value("sharebus_dead_letters_total", {"data_class": ROSTER, "reason": "unprocessable"}) == 1
    audit = [value for _t, _k, value, _h in to(harness, TOPICS.audit_facts) if value]
    facts = [fact for payload in audit for fact in json.loads(payload)["records"]]
    assert sorted(f["source"]["offset"] for f in facts) == [0, 2]


def test_a_delivery_too_large_to_send_is_dead_lettered_and_the_rest_released(harness: Harness) -> None:
    huge = harness.encode(STATS, {"district_code": "5" * PRODUCER_LIMIT, "issued": 1, "seq": 1})
    small = harness.encode(STATS, {"district_code": "500103", "issued": 2, "seq": 2})
    held = [HeldRecord(b"k", value, [], TOPICS.source(STATS), 0, offset) for offset, value in enumerate((huge, small))]
    harness.sent.clear()
    assert asyncio.run(releaser(harness).release(STATS, window_of(harness, STATS), held)) == 1
    [record, _end] = to(harness, TOPICS.delivery("hrss-si"))
    assert record[2] == small
    [(_t, _k, _v, headers)] = to(harness, TOPICS.dead_letter)
    assert (dict(headers)[DLQ_REASON], dict(headers)[DLQ_SOURCE_OFFSET]) == (b"too_large", b"0")


def test_a_failure_to_send_still_fails_the_release(harness: Harness) -> None:
    async def down(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        raise ConnectionError("broker unavailable")

    batches = releaser(harness)
    batches.send = down
    with pytest.raises(ConnectionError):
        asyncio.run(batches.release(ROSTER, window_of(harness, ROSTER), roster_held(harness, range(2))))


class HeldMessage:
    """A record read back from the held topic (the parts of a confluent-kafka Message that are read)."""

    def __init__(self, sent: Sent) -> None:
        _topic, self._key, self._value, self._headers = sent

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> HeaderList:
        return self._headers

    def error(self) -> None:
        return None


def hold(harness: Harness, seq: int, offset: int, record_id: bytes) -> Message:
    """What the handler appends to the held topic for the source record at ``offset``."""
    harness.sent.clear()
    value = harness.encode(ROSTER, roster(seq))
    headers = [(h.RECORD_ID, record_id)]
    asyncio.run(harness.handler.handle(TOPICS.source(ROSTER), 0, offset, f"U{seq}".encode(), value, headers))
    [sent] = harness.sent
    assert sent[0] == TOPICS.held
    return cast(Message, HeldMessage(sent))


def test_distinct_records_sharing_a_record_id_are_all_released_and_one_held_twice_once(harness: Harness) -> None:
    messages = [hold(harness, seq, seq, b"same-id") for seq in range(3)]
    # A router that crashed before committing reads offset 1 again and holds it a second time.
    messages.append(hold(harness, 1, 1, b"same-id"))
    seen: set[Origin] = set()
    # In two chunks, as holding.py reads a window back: the repeat is in the second.
    held = held_records(messages[:2], ROSTER, seen) + held_records(messages[2:], ROSTER, seen)
    assert [(r.origin_offset, r.key) for r in held] == [(0, b"U0"), (1, b"U1"), (2, b"U2")]

    harness.sent.clear()
    assert asyncio.run(releaser(harness).release(ROSTER, window_of(harness, ROSTER), held)) == 3
    *records, _end = to(harness, TOPICS.delivery("tax-levy"))
    assert roster_seqs(harness, records) == [0, 1, 2]
    assert to(harness, TOPICS.dead_letter) == []


@pytest.mark.parametrize(
    ("masked", "shown"), [(("inspector_id_number",), True), (("inspector_id_number", "uscc"), False)]
)
def test_a_release_withholds_the_key_where_the_grant_masks_the_key_field(
    harness: Harness, masked: tuple[str, ...], shown: bool
) -> None:
    harness.grant(roster_grant().model_copy(update={"masked_fields": masked}))
    held = roster_held(harness, range(3))
    harness.sent.clear()
    assert asyncio.run(releaser(harness).release(ROSTER, window_of(harness, ROSTER), held)) == 3
    records = [sent for sent in to(harness, TOPICS.delivery("tax-levy")) if sent[2] is not None]
    assert [key for _t, key, _v, _h in records] == [f"U{seq}".encode() if shown else None for seq in range(3)]
    assert {dict(headers).get(h.KEY_WITHHELD) for _t, _k, _v, headers in records} == {None if shown else b"uscc"}


def test_a_release_retried_after_a_failure_to_send_dead_letters_its_bad_record_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = roster_held(harness, range(3))
    poisoned(monkeypatch, held)
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    working = batches.send
    broken = {"once": True}

    async def flaky(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        # The broker goes away in the middle of the first attempt, after its dead letter was sent.
        if topic == TOPICS.delivery("tax-levy") and broken.pop("once", False):
            raise ConnectionError("broker unavailable")
        await working(topic, key, value, headers)

    batches.send = flaky
    harness.sent.clear()
    state = HoldState(window, 0, 0)
    for marker_offset in (10, 11):
        state = attempt(harness, batches, window, state, marker_offset, held)

    assert state.window.start == window.end  # released by the second marker
    [(_t, _k, _v, headers)] = to(harness, TOPICS.dead_letter)
    assert dict(headers)[DLQ_SOURCE_OFFSET] == b"1"
    assert harness.value("sharebus_dead_letters_total", {"data_class": ROSTER, "reason": "unprocessable"}) == 1
    *records, _end = to(harness, TOPICS.delivery("tax-levy"))
    assert roster_seqs(harness, records) == [0, 2]


def test_a_dead_letter_not_known_to_be_acknowledged_is_sent_again_rather_than_lost(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = roster_held(harness, range(2))
    poisoned(monkeypatch, held)
    window = window_of(harness, ROSTER)
    batches = releaser(harness)
    broken = {"once": True}

    async def flush() -> None:
        # Kafka did not acknowledge the first attempt's dead letter: it may be lost.
        if broken.pop("once", False):
            raise ConnectionError("broker unavailable")

    batches.flush = flush
    harness.sent.clear()
    state = HoldState(window, 0, 0)
    for marker_offset in (10, 11):
        state = attempt(harness, batches, window, state, marker_offset, held)

    assert state.window.start == window.end
    letters = to(harness, TOPICS.dead_letter)
    # Sent twice, and both copies name the same source record, so a reader can tell the repeat.
    assert [dict(headers)[DLQ_SOURCE_OFFSET] for _t, _k, _v, headers in letters] == [b"1", b"1"]
    *records, _end = to(harness, TOPICS.delivery("tax-levy"))
    assert roster_seqs(harness, records) == [0]
