"""``sharebus freshness`` judges a class by its newest record the router would route, not its newest bytes.

It used to take the source topic's newest timestamp whatever that record was, so a class whose provider
lately sent only garbage (dead-lettered every time) was reported fresh.
"""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace
from typing import cast

import fastavro
import httpx
import pytest
from confluent_kafka import Message

from sharebus_cli import freshness_cmd
from sharebus_core.catalogue import load_catalogue
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_core.wire import frame
from sharebus_router import freshness
from sharebus_rules.freshness import FreshnessPolicy
from tests.unit.fixtures import FIXTURE_CATALOGUE

STATS = "301001004/000001"  # daily, AMR
TOPICS = TopicNames("unit")
SOURCE = TOPICS.source(STATS)
CATALOGUE = load_catalogue(FIXTURE_CATALOGUE)
NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)


def registry() -> httpx.MockTransport:
    """Knows schema id 1 (the class's), 2 (another subject's); any other id is 404."""
    text = CATALOGUE.schema(STATS).text

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        known = {"1": TOPICS.value_subject(STATS), "2": "someone-else-value"}
        schema_id = path.split("/")[3]
        if schema_id not in known:
            return httpx.Response(404, json={"error_code": 40403})
        if path.endswith("/versions"):
            return httpx.Response(200, json=[{"subject": known[schema_id], "version": 1}])
        return httpx.Response(200, json={"schema": text})

    return httpx.MockTransport(answer)


def encoded(schema_id: int, seq: int, trailing: bytes = b"") -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, CATALOGUE.schema(STATS).parsed, {"district_code": "500103", "issued": seq, "seq": seq}
    )
    return frame(schema_id, body.getvalue() + trailing)


def test_the_check_is_the_routers_wire_and_schema_checks() -> None:
    with httpx.Client(base_url="http://registry", transport=registry()) as client:
        check = freshness_cmd.RecordCheck(client, {SOURCE: TOPICS.value_subject(STATS)})
        assert check(SOURCE, encoded(1, 1))
        assert not check(SOURCE, b"not avro")  # not_wire_format
        assert not check(SOURCE, None)
        assert not check(SOURCE, encoded(9, 1))  # unknown_schema_id
        assert not check(SOURCE, encoded(2, 1))  # schema_mismatch
        assert not check(SOURCE, encoded(1, 1, trailing=b"\x00"))  # schema_invalid: trailing bytes
        assert not check(SOURCE, frame(1, b"\xff"))  # schema_invalid: does not decode


def record(value: bytes, at: dt.datetime, offset: int) -> Message:
    return Message(topic=SOURCE, partition=0, offset=offset, value=value, timestamp=(1, int(at.timestamp() * 1000)))


def report(monkeypatch: pytest.MonkeyPatch, tail: list[Message]) -> dict[str, object]:
    newest = max(msg.timestamp()[1] for msg in tail) / 1000
    monkeypatch.setattr(freshness, "last_record_times", lambda _access, topics: {SOURCE: newest})
    monkeypatch.setattr(freshness, "partition_tails", lambda _access, topics, _span: {SOURCE: tail})
    settings = cast(
        BusSettings, SimpleNamespace(namespace="unit", kafka=None, registry_url="http://r", registry_auth=None)
    )
    found = freshness_cmd.freshness_report(CATALOGUE, settings, NOW, FreshnessPolicy(), "AMR", registry())
    [item] = [item for item in found if item.data_class == STATS]
    return freshness_cmd._as_json(item)


def test_a_class_whose_newest_records_are_garbage_is_reported_overdue(monkeypatch: pytest.MonkeyPatch) -> None:
    old = NOW - dt.timedelta(days=3)
    tail = [record(encoded(1, 1), old, 0), record(b"junk", NOW - dt.timedelta(minutes=1), 1)]
    item = report(monkeypatch, tail)
    assert item["last_record"] == old.isoformat()
    assert item["overdue"] is True


def test_a_class_with_a_recent_valid_record_is_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    recent = NOW - dt.timedelta(minutes=5)
    item = report(monkeypatch, [record(encoded(1, 1), recent, 0), record(encoded(9, 2), NOW, 1)])
    assert (item["last_record"], item["overdue"]) == (recent.isoformat(), False)
