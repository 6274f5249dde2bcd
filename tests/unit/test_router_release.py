"""Holding and releasing periodic records, and hand-over points, without Kafka."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_router.freshness import FreshnessTracker
from sharebus_router.handover import handover_key
from sharebus_router.held_records import HeldRecord
from sharebus_router.periodic import HoldState
from sharebus_router.release import BatchReleaser
from sharebus_rules.freshness import FreshnessPolicy
from sharebus_rules.periods import window_containing
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness

STATS = "301001004/000001"  # daily, unconditional, hrss-si subscribes
ROSTER = "301001005/000001"  # hourly, conditional, tax-levy subscribes
ENTERPRISE = "301001001/000001"


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(FIXTURE_CATALOGUE))


def roster(seq: int) -> dict[str, Any]:
    return {"uscc": f"U{seq}", "inspector_id_number": "11010519491231002X", "district_code": "500103", "seq": seq}


def roster_grant() -> Grant:
    now = dt.datetime.now(dt.UTC)
    return Grant.model_validate(
        {
            "grant_id": "g-r",
            "data_class": ROSTER,
            "provider": "AMR",
            "consumer": "tax-levy",
            "consumer_department": "TAX",
            "requester": "Li",
            "purpose": "inspections",
            "scenario": "joint inspections",
            "fields": ("uscc", "inspector_id_number", "seq"),
            "masked_fields": ("inspector_id_number",),
            "state": GrantState.APPROVED,
            "applied_at": now,
            "decided_at": now,
            "valid_until": now + dt.timedelta(days=1),
        }
    )


def releaser(harness: Harness, clock: Callable[[], float] = lambda: 0.0) -> BatchReleaser:
    """``clock``: the releaser's and the freshness tracker's (a test moves it to let a grant expire)."""
    freshness = FreshnessTracker(harness.catalogue, clock, FreshnessPolicy())
    return BatchReleaser(
        harness.table.routes,
        TOPICS.source,
        harness.handler,
        harness.send,
        TOPICS.audit_facts,
        harness.metrics,
        freshness,
        clock,
    )


def test_a_periodic_record_is_held_with_its_origin_not_delivered(harness: Harness) -> None:
    harness.handle(STATS, harness.encode(STATS, {"district_code": "500103", "issued": 4, "seq": 1}), offset=9)
    [(topic, key, _value, headers)] = harness.sent
    assert (topic, key) == (TOPICS.held, STATS.encode())
    origin = json.loads(dict(headers)[h.ORIGIN])
    assert origin == {"topic": TOPICS.source(STATS), "partition": 0, "offset": 9, "key": b"k".hex()}
    assert harness.facts == []  # no decision yet: that is made at release


def test_a_release_sends_one_projected_batch_and_an_end_marker_per_subscriber(harness: Harness) -> None:
    harness.grant(roster_grant())
    held = [
        HeldRecord(
            f"U{seq}".encode(),
            harness.encode(ROSTER, roster(seq)),
            [(h.RECORD_ID, f"r{seq}".encode())],
            TOPICS.source(ROSTER),
            0,
            seq,
        )
        for seq in range(3)
    ]
    window = window_containing(harness.catalogue.data_class(ROSTER).update, dt.datetime.now(dt.UTC))
    harness.sent.clear()
    assert asyncio.run(releaser(harness).release(ROSTER, window, held)) == 3
    to_tax = [
        (key, value, dict(headers))
        for topic, key, value, headers in harness.sent
        if topic == TOPICS.delivery("tax-levy")
    ]
    assert len(to_tax) == 4
    *records, (marker_key, marker_value, marker) = to_tax
    assert (marker_value, marker[h.BATCH_END], marker[h.BATCH_COUNT]) == (None, b"1", b"3")
    assert marker_key == marker[h.BATCH_ID]
    for seq, (_key, value, headers) in enumerate(records):
        assert value is not None
        assert harness.decode(value) == {"uscc": f"U{seq}", "inspector_id_number": "110105********002X", "seq": seq}
        assert (headers[h.BATCH_SEQ], headers[h.BATCH_COUNT], headers[h.MODE]) == (str(seq).encode(), b"3", b"periodic")
        assert headers[h.BATCH_START] == window.start.isoformat().encode()
    labels = {
        "provider": "AMR",
        "consumer": "tax-levy",
        "data_class": ROSTER,
        "share_type": "conditional",
        "mode": "periodic",
    }
    assert harness.value("sharebus_calls_total", labels) == 1
    assert harness.value("sharebus_records_total", labels) == 3
    audit = [value for topic, _k, value, _h in harness.sent if topic == TOPICS.audit_facts]
    facts = [fact for payload in audit if payload for fact in json.loads(payload)["records"]]
    assert sorted(f["source"]["offset"] for f in facts) == [0, 1, 2]


def test_an_empty_window_still_tells_each_subscriber(harness: Harness) -> None:
    window = window_containing(harness.catalogue.data_class(STATS).update, dt.datetime.now(dt.UTC))
    assert asyncio.run(releaser(harness).release(STATS, window, [])) == 0
    [(topic, _key, value, headers)] = harness.sent
    assert (topic, value, dict(headers)[h.BATCH_COUNT]) == (TOPICS.delivery("hrss-si"), None, b"0")
    assert (
        harness.value("sharebus_batches_released_total", {"provider": "AMR", "data_class": STATS, "outcome": "empty"})
        == 1
    )


def test_a_target_going_live_records_its_hand_over_at_the_handlers_position(harness: Harness) -> None:
    for offset in range(5):
        harness.handle(
            ENTERPRISE,
            harness.encode(
                ENTERPRISE,
                {
                    "uscc": "U",
                    "name": "n",
                    "legal_rep_name": "l",
                    "registered_capital": 1.0,
                    "established": dt.date(2020, 1, 1),
                    "seq": offset,
                    "note": None,
                },
            ),
            offset=offset,
        )
    entry = harness.table.ledger.get(handover_key("tax-levy", ENTERPRISE, None))
    assert entry is not None
    assert entry.live_from == {}  # went live before any record: everything is live
    grant = Grant.model_validate(
        {
            **roster_grant().model_dump(),
            "grant_id": "g-e",
            "data_class": ENTERPRISE,
            "consumer": "hrss-si",
            "consumer_department": "HRSS",
            "fields": ("uscc", "seq"),
            "masked_fields": (),
        }
    )
    harness.grant(grant)
    late = harness.table.ledger.get(handover_key("hrss-si", ENTERPRISE, "g-e"))
    assert late is not None
    assert late.live_from == {0: 5}  # offsets 0-4 were routed before hrss-si's grant: its history


def test_a_periodic_target_hands_over_where_the_open_window_began(harness: Harness) -> None:
    window = window_containing(harness.catalogue.data_class(ROSTER).update, dt.datetime.now(dt.UTC))
    harness.table.hold_state = lambda code: HoldState(window, 3, 42) if code == ROSTER else None
    harness.grant(roster_grant())
    entry = harness.table.ledger.get(handover_key("tax-levy", ROSTER, "g-r"))
    assert entry is not None
    assert (entry.topic, entry.live_from) == (TOPICS.held, {3: 42})
