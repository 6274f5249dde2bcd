"""The router's per-record path without Kafka: forwards, denials, dead letters and their counts."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from typing import Any

import fastavro
import pytest
from prometheus_client import CollectorRegistry

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.headers import HeaderList
from sharebus_core.settings import DEFAULT_CATALOGUE_DIR
from sharebus_core.topics import TopicNames
from sharebus_core.wire import frame
from sharebus_router.dead_letters import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_TOPIC
from sharebus_router.handler import RecordHandler
from sharebus_router.metrics import RouterMetrics
from sharebus_router.routes import build_routes
from sharebus_router.schema_cache import SchemaCache

ENTERPRISE = "301001001/000001"
TOPICS = TopicNames("unit")


class Harness:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.registry = CollectorRegistry()
        self.metrics = RouterMetrics(self.registry)
        # Nothing listens here: a lookup that reached the network would be a test bug.
        self.schemas = SchemaCache("http://127.0.0.1:9", timeout_s=0.1)
        self.sent: list[tuple[str, bytes | None, bytes | None, HeaderList]] = []
        for number, code in enumerate(catalogue.data_classes, start=1):
            self.schemas.remember(number, catalogue.schema(code).text, TOPICS.value_subject(code))
        self.ids = {code: n for n, code in enumerate(catalogue.data_classes, start=1)}

        async def send(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
            self.sent.append((topic, key, value, headers))

        self.handler = RecordHandler(
            build_routes(catalogue, TOPICS, self.metrics), self.schemas, self.metrics, TOPICS.dead_letter, send
        )

    def encode(self, code: str, record: dict[str, Any], schema_id: int | None = None) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self.catalogue.schema(code).parsed, record)
        return frame(schema_id or self.ids[code], buffer.getvalue())

    def handle(self, code: str, value: bytes | None, offset: int = 0) -> None:
        headers = [(h.DATA_CLASS, code.encode()), (h.RECORD_ID, b"r1")]
        asyncio.run(self.handler.handle(TOPICS.source(code), 0, offset, b"k", value, headers))

    def value(self, name: str, labels: dict[str, str]) -> float:
        result = self.registry.get_sample_value(name, labels)
        return result or 0.0


@pytest.fixture
def harness() -> Harness:
    return Harness(load_catalogue(DEFAULT_CATALOGUE_DIR))


def enterprise() -> dict[str, Any]:
    return {
        "uscc": "91310110666007217T",
        "enterprise_name": "重庆示例科技有限公司",
        "enterprise_type": "有限责任公司",
        "legal_rep_name": "张三",
        "legal_rep_id_number": "11010519491231002X",
        "registered_capital": 100.0,
        "establishment_date": dt.date(2020, 1, 2),
        "registered_address": "重庆市渝中区",
        "business_scope": "软件",
        "registration_authority": "重庆市渝中区市场监督管理局",
        "status": "active",
        "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


def test_unconditional_record_goes_to_every_subscriber_with_headers(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise())
    harness.handle(ENTERPRISE, value)
    subscribers = [s.system for s in harness.catalogue.subscriptions_of(ENTERPRISE)]
    assert [topic for topic, *_ in harness.sent] == [TOPICS.delivery(s) for s in subscribers]
    for (_topic, key, sent_value, headers), system in zip(harness.sent, subscribers, strict=True):
        assert key == b"k"
        assert sent_value == value
        meta = h.header_map(headers)
        assert meta[h.CONSUMER] == system.encode()
        assert meta[h.MODE] == b"realtime"
        assert meta[h.RECORD_ID] == b"r1"
        labels = {"provider": "AMR", "consumer": system, "data_class": ENTERPRISE, "mode": "realtime"}
        assert harness.value("sharebus_calls_total", labels) == 1
        assert harness.value("sharebus_records_total", labels) == 1


def test_conditional_class_is_denied_and_counted(harness: Harness) -> None:
    code = "101001001/000001"
    entry = harness.catalogue.data_class(code)
    schema = harness.catalogue.schema(code)
    record = {name: _sample(t) for name, t in schema.field_types.items()}
    harness.handle(code, harness.encode(code, record))
    assert harness.sent == []
    for sub in harness.catalogue.subscriptions_of(code):
        labels = {"provider": entry.provider, "consumer": sub.system, "data_class": code, "reason": "no_grant"}
        assert harness.value("sharebus_denials_total", labels) == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"plain text, not Avro", "not_wire_format"),
        (None, "not_wire_format"),
        (frame(99_999, b"\x02"), "unknown_schema_id"),
        (frame(1, b"\x02"), "schema_invalid"),
    ],
)
def test_bad_bytes_go_to_the_dead_letter_topic(harness: Harness, value: bytes | None, reason: str) -> None:
    if reason == "unknown_schema_id":
        # A negative answer is cached, so this id is known-unknown without a registry round trip.
        harness.schemas._unknown[99_999] = float("inf")
    harness.handle(ENTERPRISE, value, offset=41)
    [(topic, _key, sent_value, headers)] = harness.sent
    meta = h.header_map(headers)
    assert topic == TOPICS.dead_letter
    assert sent_value == value
    assert meta[DLQ_REASON] == reason.encode()
    assert meta[DLQ_SOURCE_TOPIC] == TOPICS.source(ENTERPRISE).encode()
    assert meta[DLQ_SOURCE_OFFSET] == b"41"
    assert harness.value("sharebus_dead_letters_total", {"data_class": ENTERPRISE, "reason": reason}) == 1
    assert (
        harness.value(
            "sharebus_records_received_total", {"provider": "AMR", "data_class": ENTERPRISE, "mode": "realtime"}
        )
        == 0
    )


def test_record_of_another_class_schema_is_a_mismatch(harness: Harness) -> None:
    other = "301001002/000001"
    schema = harness.catalogue.schema(other)
    value = harness.encode(other, {name: _sample(t) for name, t in schema.field_types.items()})
    harness.handle(ENTERPRISE, value)
    [(topic, _, _, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    assert h.header_map(headers)[DLQ_REASON] == b"schema_mismatch"


def test_trailing_bytes_are_schema_invalid(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise()) + b"\x00\x00"
    harness.handle(ENTERPRISE, value)
    [(_, _, _, headers)] = harness.sent
    assert h.header_map(headers)[DLQ_REASON] == b"schema_invalid"


def _sample(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        return None if "null" in avro_type else _sample(avro_type[0])
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "date":
            return dt.date(2024, 5, 6)
        if avro_type.get("logicalType", "").startswith("timestamp"):
            return dt.datetime(2024, 5, 6, tzinfo=dt.UTC)
        return _sample(avro_type["type"])
    return {"string": "x", "int": 1, "long": 2, "double": 1.5, "float": 1.5, "boolean": True}[avro_type]
