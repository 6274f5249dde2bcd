"""The router walks a record instead of decoding it when nothing needs its value, with the same outcome."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_router.dead_letters import DLQ_DETAIL, DLQ_REASON
from sharebus_router.decoding import decode
from sharebus_router.quality_gate import QualityGate
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_quality_router import ENTERPRISE, RULES, Keys, enterprise, ruled_catalogue

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
def harness() -> Harness:
    """The fixture catalogue as it is: no class declares a quality rule."""
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    harness.handler.quality = QualityGate(harness.catalogue, lambda: NOW, {ENTERPRISE: Keys()})
    assert not harness.handler.quality.reads_values(ENTERPRISE)
    return harness


def checked(harness: Harness, code: str, value: bytes) -> Any:
    return asyncio.run(harness.handler.checked(value, harness.handler.routes[TOPICS.source(code)]))


@pytest.mark.parametrize(
    ("changes", "filled"),
    [({}, 6), ({"name": " ", "note": None}, 5), ({"legal_rep_name": "", "note": "x"}, 6)],
    ids=["note-null", "blank-and-null", "empty"],
)
def test_a_class_without_rules_is_walked_and_scored_as_judging_its_decoded_value_would(
    harness: Harness, changes: dict[str, Any], filled: int
) -> None:
    value = harness.encode(ENTERPRISE, enterprise(**changes))
    record = checked(harness, ENTERPRISE, value)
    assert record.bounds is not None
    assert record._record is None
    gate = harness.handler.quality
    assert gate is not None
    writer = record.writer
    judged = gate.judge(ENTERPRISE, decode(writer, value[5:]))
    harness.handle(ENTERPRISE, value)
    [fact] = harness.facts
    assert fact["quality"] == judged.as_fact()
    assert fact["quality"]["filled"] == filled


def test_a_class_with_a_rule_on_a_value_is_decoded(tmp_path: Any) -> None:
    harness = Harness(load_catalogue(ruled_catalogue(tmp_path)))
    harness.handler.quality = QualityGate(harness.catalogue, lambda: NOW, {ENTERPRISE: Keys()})
    assert ENTERPRISE in RULES
    record = checked(harness, ENTERPRISE, harness.encode(ENTERPRISE, enterprise()))
    assert record.bounds is None
    assert record._record is not None


def test_a_walked_record_that_does_not_fit_its_schema_is_a_dead_letter(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise())
    harness.handle(ENTERPRISE, value + b"\x00")
    [(topic, _key, sent, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    assert sent == value + b"\x00"
    assert dict(headers)[DLQ_REASON] == b"schema_invalid"
    assert b"1 trailing byte(s) after the record" in dict(headers)[DLQ_DETAIL]
