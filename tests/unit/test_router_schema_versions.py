"""A record written with an earlier version of its class's schema is read as the current version."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.wire import frame
from sharebus_router.dead_letters import DLQ_DETAIL, DLQ_REASON
from sharebus_router.held_records import HeldRecord
from sharebus_rules.periods import window_containing
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_backfill_grants import backfiller, message, request
from tests.unit.test_router_handler import PENALTY, enterprise, penalty, penalty_grant
from tests.unit.test_router_release import releaser

EARLIER_ID = 500


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    """The fixture catalogue, where the penalty class has since gained a field with a default."""
    catalogue = tmp_path / "catalogue"
    shutil.copytree(FIXTURE_CATALOGUE, catalogue)
    path = catalogue / "avro" / "penalty.avsc"
    doc = json.loads(path.read_text())
    doc["fields"].append({"name": "priority", "type": "int", "default": 3})
    path.write_text(json.dumps(doc))
    return Harness(load_catalogue(catalogue))


def earlier(harness: Harness, record: dict[str, Any], drop: str = "priority") -> bytes:
    """``record`` written with the class's schema as it was without ``drop``, registered for the class."""
    doc = json.loads(harness.catalogue.schema(PENALTY).text)
    doc["fields"] = [f for f in doc["fields"] if f["name"] != drop]
    harness.schemas.remember(EARLIER_ID, json.dumps(doc), TOPICS.value_subject(PENALTY))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(doc), record)
    return frame(EARLIER_ID, buffer.getvalue())


def test_a_field_added_since_the_record_was_written_gets_its_default(harness: Harness) -> None:
    harness.grant(penalty_grant(fields=("uscc", "amount", "priority"), masked_fields=()))
    harness.handle(PENALTY, earlier(harness, penalty()))

    [(topic, _key, value, _headers)] = harness.sent
    assert topic == TOPICS.delivery("tax-levy")
    assert value is not None
    assert harness.decode(value) == {"uscc": "91310110666007217T", "amount": 500.0, "priority": 3}


def test_a_record_of_the_current_version_is_read_as_written(harness: Harness) -> None:
    harness.grant(penalty_grant(fields=("uscc", "priority"), masked_fields=()))
    harness.handle(PENALTY, harness.encode(PENALTY, {**penalty(), "priority": 7}))

    [(_topic, _key, value, _headers)] = harness.sent
    assert value is not None
    assert harness.decode(value) == {"uscc": "91310110666007217T", "priority": 7}


def test_a_version_the_current_one_cannot_read_is_a_dead_letter_that_says_so(harness: Harness) -> None:
    harness.grant(penalty_grant())
    # Without "amount", which the current version has with no default: Avro cannot resolve it.
    value = earlier(harness, {k: v for k, v in penalty().items() if k != "amount"}, drop="amount")
    harness.handle(PENALTY, value)

    [(topic, _key, _value, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    meta = h.header_map(headers)
    assert meta[DLQ_REASON] == b"schema_invalid"
    assert b"as the class's current schema" in meta[DLQ_DETAIL]


# A field the enterprise class had once and no longer has: no grant or subscription can name it now.
REMOVED = "legal_rep_id_number"
ENTERPRISE = "301001001/000001"  # unconditional, no sensitive field: its subscribers get every field
STATS = "301001004/000001"  # periodic and unconditional: hrss-si gets every field in batches


def before_removal(harness: Harness, code: str, record: dict[str, Any]) -> bytes:
    """``record`` written with the class's schema as it was while it still had ``REMOVED``."""
    doc = json.loads(harness.catalogue.schema(code).text)
    doc["fields"].append({"name": REMOVED, "type": "string"})
    harness.schemas.remember(EARLIER_ID, json.dumps(doc), TOPICS.value_subject(code))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(doc), {**record, REMOVED: "11010519491231002X"})
    return frame(EARLIER_ID, buffer.getvalue())


def delivered_to(harness: Harness, consumer: str) -> list[dict[str, Any]]:
    return [
        harness.decode(value)
        for topic, _key, value, _headers in harness.sent
        if topic == TOPICS.delivery(consumer) and value is not None
    ]


def test_a_field_removed_from_the_class_does_not_reach_a_subscriber_of_every_field(harness: Harness) -> None:
    harness.handle(ENTERPRISE, before_removal(harness, ENTERPRISE, enterprise()))

    for consumer in ("tax-levy", "psb-case"):
        [record] = delivered_to(harness, consumer)
        assert record == enterprise()  # every field the class has, and only those


def test_a_field_removed_from_the_class_is_not_backfilled(harness: Harness) -> None:
    messages = [message(ENTERPRISE, before_removal(harness, ENTERPRISE, enterprise()), 0)]
    outcome = asyncio.run(backfiller(harness, ENTERPRISE, None, messages).serve(request(ENTERPRISE)))

    assert outcome.records == 1
    assert delivered_to(harness, "tax-levy") == [enterprise()]


def test_a_field_removed_from_the_class_is_not_released(harness: Harness) -> None:
    stats = {"district_code": "500103", "issued": 4, "seq": 1}
    held = [HeldRecord(b"k", before_removal(harness, STATS, stats), [], TOPICS.source(STATS), 0, 0)]
    window = window_containing(harness.catalogue.data_class(STATS).update, dt.datetime.now(dt.UTC))

    assert asyncio.run(releaser(harness).release(STATS, window, held)) == 1
    assert delivered_to(harness, "hrss-si") == [stats]
