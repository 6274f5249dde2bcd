"""A record written with an earlier version of its class's schema is read as the current version."""

from __future__ import annotations

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
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_router_handler import PENALTY, penalty, penalty_grant

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
