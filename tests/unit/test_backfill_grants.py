"""A backfill obeys live delivery's rules for as long as it runs: the grant, and the publisher's headers.

Served through ``Backfiller.serve`` over the Kafka-free harness: the hand-over points are put in the
ledger by hand, the source range is read from records made here, and time moves on the handler's clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, cast

import pytest
from confluent_kafka import Message

from sharebus_cli.backfill_cmd import exit_code, line
from sharebus_core import headers as h
from sharebus_core.backfill_log import BackfillEvent, BackfillState
from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.headers import HeaderList
from sharebus_core.topic_reader import RangeReader
from sharebus_router import backfill as backfill_module
from sharebus_router.backfill import Backfiller
from sharebus_router.dead_letters import DLQ_REASON
from sharebus_router.message_size import message_size
from sharebus_router.projector import render
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_audit_fact_bounds import enterprise_record
from tests.unit.test_control_events import UNUSED

ENTERPRISE = "301001001/000001"  # tax-levy subscribes without a grant
PENALTY = "301001002/000001"  # tax-levy needs a grant
GRANT_ID = "g-p"
RECORDS = 6
CHUNK = 2  # the reader hands over this many records a chunk

Header = tuple[str, bytes | None]
# As confluent-kafka hands them over: a header may have no value.
RawHeaders = list[tuple[str, str | bytes | None]]


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


def penalty_grant(harness: Harness, **overrides: Any) -> Grant:
    now = dt.datetime.fromtimestamp(harness.now, dt.UTC)
    values: dict[str, Any] = {
        "grant_id": GRANT_ID,
        "data_class": PENALTY,
        "provider": "AMR",
        "consumer": "tax-levy",
        "consumer_department": "TAX",
        "requester": "Li",
        "purpose": "tax credit",
        "scenario": "rating",
        "fields": ("uscc", "amount"),
        "masked_fields": (),
        "state": GrantState.APPROVED,
        "applied_at": now,
        "decided_at": now,
        "valid_until": now + dt.timedelta(days=1),
    }
    values.update(overrides)
    return Grant.model_validate(values)


def request(code: str) -> BackfillEvent:
    return BackfillEvent(
        request_id="bf-0123456789ab",
        state=BackfillState.REQUESTED,
        consumer="tax-levy",
        data_class=code,
        requested_by="TAX",
        at=dt.datetime.now(dt.UTC),
    )


class Source:
    """The source partition's records below the hand-over point, in chunks of ``CHUNK``."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.done = not messages

    def next_chunk(self, limit: int) -> list[Message]:
        take = min(limit, CHUNK)
        chunk, self.messages = self.messages[:take], self.messages[take:]
        self.done = not self.messages
        return chunk

    def close(self) -> None:
        pass


class SourceBackfiller(Backfiller):
    """Reads partition 0 from ``messages``; every other partition of the class is empty."""

    messages: list[Message]

    def _reader(self, topic: str, partition: int, start: int, end: int) -> RangeReader:
        chunk = [m for m in self.messages if start <= (m.offset() or 0) < end] if partition == 0 else []
        return cast(RangeReader, Source(chunk))


def message(code: str, value: bytes, offset: int, headers: Sequence[Header] | None = None) -> Message:
    given: RawHeaders = [*headers] if headers is not None else [(h.RECORD_ID, f"r{offset}".encode())]
    return Message(topic=TOPICS.source(code), partition=0, offset=offset, key=b"U1", value=value, headers=given)


def backfiller(harness: Harness, code: str, grant_id: str | None, messages: list[Message]) -> SourceBackfiller:
    """A backfiller whose subscriber's hand-over point is past every message."""
    partitions = harness.catalogue.data_class(code).partitions
    points = {p: (len(messages) if p == 0 else 0) for p in range(partitions)}
    harness.table.ledger.record("tax-levy", code, grant_id, TOPICS.source(code), points)
    made = SourceBackfiller(harness.table, TOPICS, harness.handler, harness.send, harness.metrics, UNUSED)
    made.messages = messages
    return made


def penalty_messages(harness: Harness) -> list[Message]:
    value = harness.encode(PENALTY, {"uscc": "U1", "person_id_number": "11010519491231002X", "amount": 5.0, "seq": 1})
    return [message(PENALTY, value, n) for n in range(RECORDS)]


def delivered(harness: Harness) -> list[HeaderList]:
    return [headers for topic, _k, _v, headers in harness.sent if topic == TOPICS.delivery("tax-levy")]


def audited(harness: Harness) -> int:
    return sum(1 for topic, *_ in harness.sent if topic == TOPICS.audit_facts)


def after_deliveries(harness: Harness, count: int, act: Any) -> None:
    """Runs ``act`` (async) right after the ``count``-th delivery to tax-levy, as a grant event would land."""
    send = harness.send

    async def watched(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        await send(topic, key, value, headers)
        if topic == TOPICS.delivery("tax-levy") and len(delivered(harness)) == count:
            await act()

    harness.send = watched


def test_a_grant_revoked_mid_backfill_stops_it_refused(harness: Harness) -> None:
    harness.grant(penalty_grant(harness))
    messages = penalty_messages(harness)

    async def revoke() -> None:
        harness.table.on_grant(penalty_grant(harness, state=GrantState.REVOKED, reason="misuse"))
        await harness.table.rebuild(PENALTY)

    after_deliveries(harness, 3, revoke)
    outcome = asyncio.run(backfiller(harness, PENALTY, GRANT_ID, messages).serve(request(PENALTY)))
    assert outcome.state is BackfillState.REFUSED
    assert "revoked" in (outcome.reason or "")
    assert outcome.records == 3
    assert len(delivered(harness)) == 3  # nothing after the revocation
    assert audited(harness) >= 1  # what was delivered is audited all the same


def test_a_grant_replaced_mid_backfill_stops_it_superseded_naming_the_new_grant(harness: Harness) -> None:
    harness.grant(penalty_grant(harness))
    messages = penalty_messages(harness)

    async def replace() -> None:
        # A newer grant for the same consumer and class governs from now on (routing.select_grant).
        later = dt.datetime.fromtimestamp(harness.now + 60, dt.UTC)
        harness.table.on_grant(penalty_grant(harness, grant_id="g-q", applied_at=later, decided_at=later))
        await harness.table.rebuild(PENALTY)

    after_deliveries(harness, 3, replace)
    outcome = asyncio.run(backfiller(harness, PENALTY, GRANT_ID, messages).serve(request(PENALTY)))
    # Not refused: the consumer is still entitled, under another grant; asking again backfills under it.
    assert outcome.state is BackfillState.SUPERSEDED
    assert "superseded by grant g-q" in (outcome.reason or "")
    assert outcome.records == 3
    assert len(delivered(harness)) == 3
    # The CLI shows it as such, with its own exit code.
    assert line(outcome).split()[1] == "superseded"
    assert exit_code(outcome, waited=True) == 8


def test_a_grant_that_expires_mid_backfill_stops_it_refused(harness: Harness) -> None:
    harness.grant(penalty_grant(harness, valid_until=dt.datetime.fromtimestamp(harness.now + 60, dt.UTC)))
    messages = penalty_messages(harness)

    async def expire() -> None:
        harness.now += 120  # the route is not rebuilt yet: only the clock says the grant has ended

    after_deliveries(harness, 2, expire)
    outcome = asyncio.run(backfiller(harness, PENALTY, GRANT_ID, messages).serve(request(PENALTY)))
    assert outcome.state is BackfillState.REFUSED
    assert "grant_expired" in (outcome.reason or "")
    assert outcome.records == 2
    assert len(delivered(harness)) == 2


def test_a_backfill_asked_for_after_the_grant_expired_delivers_nothing(harness: Harness) -> None:
    harness.grant(penalty_grant(harness, valid_until=dt.datetime.fromtimestamp(harness.now + 60, dt.UTC)))
    messages = penalty_messages(harness)
    harness.now += 120
    outcome = asyncio.run(backfiller(harness, PENALTY, GRANT_ID, messages).serve(request(PENALTY)))
    assert (outcome.state, outcome.records) == (BackfillState.REFUSED, 0)
    assert "grant_expired" in (outcome.reason or "")
    assert delivered(harness) == []


def test_a_route_rebuilt_with_the_grant_still_in_force_lets_the_backfill_finish(harness: Harness) -> None:
    harness.grant(penalty_grant(harness))
    messages = penalty_messages(harness)

    async def rebuild() -> None:
        await harness.table.rebuild(PENALTY)

    after_deliveries(harness, 1, rebuild)
    outcome = asyncio.run(backfiller(harness, PENALTY, GRANT_ID, messages).serve(request(PENALTY)))
    assert (outcome.state, outcome.records, outcome.reason) == (BackfillState.DONE, RECORDS, None)
    assert len(delivered(harness)) == RECORDS


@pytest.mark.parametrize("name", [h.RECORD_ID, h.DATA_CLASS, h.PUBLISHED_NS])
def test_a_record_with_a_valueless_bus_header_is_skipped_as_live_delivery_refuses_it(
    harness: Harness, name: str
) -> None:
    value = harness.encode(ENTERPRISE, enterprise_record())
    bad: list[Header] = [(h.RECORD_ID, b"r-bad"), (name, None)] if name != h.RECORD_ID else [(name, None)]
    harness.handle_raw(ENTERPRISE, value, bad)
    assert [(topic, dict(headers).get(DLQ_REASON)) for topic, _k, _v, headers in harness.sent] == [
        (TOPICS.dead_letter, b"bad_header")
    ]
    harness.sent.clear()
    messages = [
        message(ENTERPRISE, value, 0),
        message(ENTERPRISE, value, 1, bad),
        message(ENTERPRISE, value, 2),
    ]
    outcome = asyncio.run(backfiller(harness, ENTERPRISE, None, messages).serve(request(ENTERPRISE)))
    # Skipped like every record that was dead-lettered when first routed; the others still go.
    assert (outcome.state, outcome.records) == (BackfillState.DONE, 2)
    assert [dict(headers)[h.RECORD_ID] for headers in delivered(harness)] == [b"r0", b"r2"]


def test_a_valueless_header_of_the_publisher_s_own_is_dropped_as_live_delivery_does(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise_record())
    messages = [message(ENTERPRISE, value, 0, [(h.RECORD_ID, b"r0"), ("x-note", None)])]
    outcome = asyncio.run(backfiller(harness, ENTERPRISE, None, messages).serve(request(ENTERPRISE)))
    assert (outcome.state, outcome.records) == (BackfillState.DONE, 1)
    [headers] = delivered(harness)
    assert "x-note" not in dict(headers)


def test_a_delivery_too_large_to_send_is_skipped_not_the_end_of_the_backfill(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise_record())
    messages = [message(ENTERPRISE, value, n) for n in range(3)]
    harness.handle(ENTERPRISE, value)  # live, to measure a delivery
    _topic, key, live_value, live_headers = harness.sent[0]
    harness.sent.clear()
    # Room for a delivery and the backfill's header, not for a record id 190 bytes long.
    harness.handler.max_message_bytes = message_size(key, live_value, live_headers) + 100
    messages[2] = message(ENTERPRISE, value, 2, [(h.RECORD_ID, b"r" * 190)])
    made = backfiller(harness, ENTERPRISE, None, messages)
    outcome = asyncio.run(made.serve(request(ENTERPRISE)))
    assert (outcome.state, outcome.records) == (BackfillState.DONE, 2)
    assert [dict(headers)[h.RECORD_ID] for headers in delivered(harness)] == [b"r0", b"r1"]


@pytest.mark.parametrize(("fields", "key"), [(("uscc", "amount"), b"U1"), (("amount",), None)])
def test_a_backfill_withholds_the_key_where_the_grant_does_not_show_the_key_field(
    harness: Harness, fields: tuple[str, ...], key: bytes | None
) -> None:
    harness.grant(penalty_grant(harness, fields=fields))
    outcome = asyncio.run(backfiller(harness, PENALTY, GRANT_ID, penalty_messages(harness)).serve(request(PENALTY)))
    assert outcome.state is BackfillState.DONE
    sent = [
        (k, dict(hs).get(h.KEY_WITHHELD)) for topic, k, _v, hs in harness.sent if topic == TOPICS.delivery("tax-levy")
    ]
    assert sent == [(key, None if key else b"uscc")] * RECORDS


def audited_offsets(harness: Harness) -> list[int]:
    return sorted(
        fact["source"]["offset"]
        for topic, _k, value, _h in harness.sent
        if topic == TOPICS.audit_facts and value is not None
        for fact in json.loads(value)["records"]
    )


def test_a_record_the_backfill_cannot_render_is_skipped_and_every_delivery_is_audited(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the code did not foresee about one record (live delivery dead-letters it as unprocessable,
    # e.g. a value its projection cannot encode) must neither end the backfill nor leave the records
    # it delivered before unaudited.
    harness.grant(penalty_grant(harness))
    messages = penalty_messages(harness)
    calls = iter(range(RECORDS))

    def fails_once(target: Any, value: Any, published: bytes | None) -> bytes | None:
        if next(calls) == 2:
            raise ValueError("cannot encode")
        return render(target, value, published)

    monkeypatch.setattr(backfill_module, "render", fails_once)
    outcome = asyncio.run(backfiller(harness, PENALTY, GRANT_ID, messages).serve(request(PENALTY)))
    assert (outcome.state, outcome.records) == (BackfillState.DONE, RECORDS - 1)
    assert len(delivered(harness)) == RECORDS - 1
    assert audited_offsets(harness) == [n for n in range(RECORDS) if n != 2]


def test_what_a_backfill_delivered_before_a_failure_is_audited(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.grant(penalty_grant(harness))
    messages = penalty_messages(harness)
    send = harness.send

    async def breaks(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
        if topic == TOPICS.delivery("tax-levy") and len(delivered(harness)) == 3:
            raise RuntimeError("the producer is closed")
        await send(topic, key, value, headers)

    harness.send = breaks
    with pytest.raises(RuntimeError):
        asyncio.run(backfiller(harness, PENALTY, GRANT_ID, messages).serve(request(PENALTY)))
    assert audited_offsets(harness) == [0, 1, 2]
