"""No facts message the router writes passes its bound, and the auditor chains split facts as whole ones."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any, cast

from confluent_kafka import Message

from sharebus_audit.auditor import audit_events
from sharebus_core import headers as h
from sharebus_core.audit_fact import audited_text
from sharebus_core.audit_trail import GENESIS, seal_block, verify_links
from sharebus_core.backfill_log import BackfillEvent, BackfillState
from sharebus_core.catalogue import load_catalogue
from sharebus_core.topic_reader import RangeReader
from sharebus_router.audit_facts import DEFAULT_MAX_BYTES, decision, encode_batch, record_fact
from sharebus_router.backfill import Backfiller
from sharebus_router.held_records import HeldRecord
from sharebus_router.settings import RouterSettings
from sharebus_rules.periods import window_containing
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_control_events import UNUSED
from tests.unit.test_router_release import ENTERPRISE, STATS, releaser

BROKER_LIMIT = 1_048_576  # the broker's and producer's default limit of one message


def fact(offset: int, consumers: int, partition: int = 0) -> dict[str, Any]:
    made = [
        decision(f"system-{n:03d}", f"grant-{n:03d}", True, None, f"{offset}:{n}".encode()) for n in range(consumers)
    ]
    headers = [(h.TRACE_ID, f"trace-{offset:032d}".encode()), (h.RECORD_ID, f"record-{offset:032d}".encode())]
    return record_fact("AMR", "301001001/000001", "realtime", "src", partition, offset, b"k" * 40, headers, made)


def enterprise_record() -> dict[str, Any]:
    return {
        "uscc": "91500000MA00000001",
        "name": "Chongqing Test Co.",
        "legal_rep_name": "Zhang San",
        "registered_capital": 1.0,
        "established": dt.date(2020, 1, 1),
        "seq": 1,
        "note": None,
    }


def events_of(messages: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    return [event for _key, value in messages for event in audit_events(json.loads(value), partition=0)]


def chains(events: list[dict[str, Any]]) -> bool:
    sealed, prev = [], GENESIS
    for start in range(0, len(events), 100):
        sealed.append(seal_block(events[start : start + 100], prev))
        prev = sealed[-1]["hash"]
    return verify_links(0, enumerate(sealed)) == (len(events), None)


def test_the_bound_is_a_setting_well_under_the_brokers_limit() -> None:
    assert RouterSettings.model_fields["audit_message_max_bytes"].default == DEFAULT_MAX_BYTES == 256 * 1024
    assert DEFAULT_MAX_BYTES * 4 <= BROKER_LIMIT


def test_a_batch_of_many_facts_is_split_into_bounded_messages_in_order() -> None:
    facts = [fact(offset, consumers=3) for offset in range(5000)]
    messages = encode_batch(facts)
    assert len(messages) > 1
    assert all(len(value) <= DEFAULT_MAX_BYTES for _key, value in messages)
    assert {key for key, _value in messages} == {b"src:0"}
    events = events_of(messages)
    assert [(e["source"]["offset"], e["consumer"]) for e in events] == [
        (offset, f"system-{n:03d}") for offset in range(5000) for n in range(3)
    ]


def test_a_fact_with_too_many_decisions_is_cut_into_parts_that_chain_as_the_whole_fact() -> None:
    whole = fact(7, consumers=5000)
    assert len(json.dumps(whole)) > 4 * 64 * 1024
    messages = encode_batch([whole], max_bytes=64 * 1024)
    assert len(messages) >= 4
    assert all(len(value) <= 64 * 1024 for _key, value in messages)
    unsplit = audit_events({"records": [whole]}, partition=0)
    events = events_of(messages)
    assert events == unsplit
    assert chains(events)


def test_a_class_delivered_to_200_systems_audits_every_decision_in_bounded_messages() -> None:
    # One batch of the data path: 200 records, each delivered to 200 systems.
    values = [value for _key, value in encode_batch([fact(offset, consumers=200) for offset in range(200)])]
    assert all(len(value) <= DEFAULT_MAX_BYTES for value in values)
    events = events_of([(b"", value) for value in values])
    assert len(events) == 200 * 200
    assert [(e["source"]["offset"], e["consumer"]) for e in events[:201]][-2:] == [(0, "system-199"), (1, "system-000")]
    assert chains(events)


def test_a_window_of_20000_records_in_one_partition_is_released_in_bounded_messages() -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    window = window_containing(harness.catalogue.data_class(STATS).update, dt.datetime.now(dt.UTC))
    value = harness.encode(STATS, {"district_code": "500103", "issued": 4, "seq": 1})
    held = [
        HeldRecord(b"k", value, [(h.RECORD_ID, f"r{n}".encode())], TOPICS.source(STATS), 0, n) for n in range(20_000)
    ]
    assert asyncio.run(releaser(harness).release(STATS, window, held)) == 20_000
    facts = [(key, value) for topic, key, value, _h in harness.sent if topic == TOPICS.audit_facts]
    assert all(value is not None and len(value) <= DEFAULT_MAX_BYTES for _key, value in facts)
    events = events_of([(key or b"", value or b"") for key, value in facts])
    assert [e["source"]["offset"] for e in events if e["consumer"] == "hrss-si"] == list(range(20_000))


def test_publisher_chosen_fields_cannot_take_a_fact_past_the_bound() -> None:
    huge = b"x" * 2_000_000
    made = record_fact(
        "AMR", "c", "realtime", "src", 0, 1, huge, [(h.TRACE_ID, huge)], [decision("a", None, False, "r")]
    )
    assert len(json.dumps(made)) < 2000
    assert made["key"] == audited_text(huge)
    assert str(made["key"]).startswith("sha256:")
    assert made["record_id"] is None
    assert record_fact("AMR", "c", "realtime", "src", 0, 1, b"short", [], [])["key"] == "short"


class FakeRange:
    """A RangeReader over records made here: ``count`` records of one source partition."""

    def __init__(self, harness: Harness, code: str, value: bytes, count: int) -> None:
        self.messages = [
            Message(
                topic=TOPICS.source(code),
                partition=0,
                offset=n,
                key=f"91500000MA{n:08d}".encode(),
                value=value,
                headers=[(h.RECORD_ID, f"{n:032x}".encode()), (h.TRACE_ID, f"{n:032x}".encode())],
            )
            for n in range(count)
        ]
        self.done = False

    def next_chunk(self, limit: int) -> list[Message]:
        chunk, self.messages = self.messages[:limit], self.messages[limit:]
        self.done = not self.messages
        return chunk

    def close(self) -> None:
        pass


def test_a_backfill_of_50000_records_is_audited_in_bounded_messages() -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    route = harness.table.routes[TOPICS.source(ENTERPRISE)]
    [target] = [t for t in route.targets if t.consumer == "tax-levy"]
    value = harness.encode(ENTERPRISE, enterprise_record())
    backfiller = Backfiller(harness.table, TOPICS, harness.handler, harness.send, harness.metrics, UNUSED)
    request = BackfillEvent(
        request_id="bf-0123456789ab",
        state=BackfillState.REQUESTED,
        consumer="tax-levy",
        data_class=ENTERPRISE,
        requested_by="TAX",
        at=dt.datetime.now(dt.UTC),
    )
    reader = FakeRange(harness, ENTERPRISE, value, 50_000)
    sent = asyncio.run(backfiller._replay(request, route, target, cast(RangeReader, reader), set()))
    assert sent == 50_000
    facts = [value for topic, _key, value, _h in harness.sent if topic == TOPICS.audit_facts]
    assert all(value is not None and len(value) <= DEFAULT_MAX_BYTES for value in facts)
    events = events_of([(b"", value or b"") for value in facts])
    assert [e["source"]["offset"] for e in events] == list(range(50_000))
    assert {e["backfill"] for e in events} == {"bf-0123456789ab"}
