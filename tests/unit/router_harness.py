"""A Kafka-free router for unit tests: the real route table, handler and releaser over offline schemas."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any, cast

import fastavro
import httpx
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant
from sharebus_core.headers import HeaderList
from sharebus_core.topics import TopicNames
from sharebus_core.wire import frame, unframe
from sharebus_router.audit_facts import encode_batch
from sharebus_router.handler import RecordHandler
from sharebus_router.metrics import RouterMetrics
from sharebus_router.route_table import RouteTable
from sharebus_router.routes import RouteBuilder
from sharebus_router.schema_cache import SchemaCache, WriterSchema

TOPICS = TopicNames("unit")


class OfflineSchemas(SchemaCache):
    """A registry stand-in for unit tests: projections get ids locally, nothing reaches the network."""

    def __init__(self) -> None:
        # A registry that knows no id: only what was remembered or registered here exists.
        registry = httpx.MockTransport(lambda request: httpx.Response(404, json={"error_code": 40403}))
        super().__init__("http://registry", timeout_s=0.1, registry_auth=None, transport=registry)
        self.next_id = 1000
        # Subject -> the schema text last registered under it.
        self.registered: dict[str, str] = {}

    async def refresh(self, schema_id: int) -> WriterSchema:
        writer = self.cached(schema_id)
        assert writer is not None
        return writer

    async def register(self, subject: str, schema_text: str) -> tuple[int, Any]:
        self.registered[subject] = schema_text
        self.next_id += 1
        self.remember(self.next_id, schema_text, subject)
        writer = self.cached(self.next_id)
        assert writer is not None
        return self.next_id, writer.parsed


# What the router's producer (aiokafka under faust) accepts by default: faust's producer_max_request_size.
PRODUCER_LIMIT = 1_000_000


class MessageTooLarge(Exception):
    """What aiokafka's producer raises for a message over its max request size."""


class Harness:
    def __init__(self, catalogue: Catalogue, *, public: bool = False) -> None:
        self.catalogue = catalogue
        self.registry = CollectorRegistry()
        self.metrics = RouterMetrics(self.registry)
        self.schemas = OfflineSchemas()
        self.sent: list[tuple[str, bytes | None, bytes | None, HeaderList]] = []
        self.ids = {code: n for n, code in enumerate(catalogue.data_classes, start=1)}
        for code, number in self.ids.items():
            self.schemas.remember(number, catalogue.schema(code).text, TOPICS.value_subject(code))

        self.facts: list[dict[str, Any]] = []
        # The handler's clock (seconds since the epoch); tests move it instead of sleeping.
        self.now = time.time()

        async def send(topic: str, key: bytes | None, value: bytes | None, headers: HeaderList) -> None:
            # The same check as aiokafka's, so a message the real producer would refuse fails here too.
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
            if size > PRODUCER_LIMIT:
                raise MessageTooLarge(f"{size} bytes to {topic}")
            self.sent.append((topic, key, value, headers))

        self.send = send

        self.table = RouteTable(
            catalogue, TOPICS, RouteBuilder(catalogue, TOPICS, self.metrics, self.schemas, public=public)
        )
        asyncio.run(self.table.build_all())
        self.handler = RecordHandler(
            self.table.routes,
            self.schemas,
            self.metrics,
            TOPICS.dead_letter,
            send,
            catalogue.data_classes,
            held_topic=TOPICS.held,
            clock=lambda: self.now,
            whole=self.table.builder.whole,
        )

    def grant(self, grant: Grant) -> None:
        self.table.on_grant(grant)
        asyncio.run(self.table.rebuild(grant.data_class))

    def encode(self, code: str, record: dict[str, Any], schema_id: int | None = None) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self.catalogue.schema(code).parsed, record)
        return frame(schema_id or self.ids[code], buffer.getvalue())

    def decode(self, value: bytes) -> dict[str, Any]:
        schema_id, body = unframe(value)
        writer = self.schemas.cached(schema_id)
        assert writer is not None
        return cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(body), writer.parsed, None))

    def handle(self, code: str, value: bytes | None, offset: int = 0, label: str | None = None) -> None:
        headers = [(h.DATA_CLASS, (label or code).encode()), (h.RECORD_ID, b"r1")]
        fact = asyncio.run(self.handler.handle(TOPICS.source(code), 0, offset, b"k", value, headers))
        self.handler.tally.flush()  # as the data path does after each batch
        if fact is not None:
            # Through the wire encoding the auditor reads.
            [(_, encoded)] = encode_batch([fact])
            self.facts.extend(json.loads(encoded)["records"])

    def handle_raw(
        self, code: str, value: bytes | None, headers: list[tuple[str, bytes | None]], key: bytes | None = b"k"
    ) -> dict[str, Any] | None:
        """Routes one record with exactly these headers (valueless ones too, as confluent-kafka hands them over)."""
        fact = asyncio.run(self.handler.handle(TOPICS.source(code), 0, 0, key, value, headers))
        self.handler.tally.flush()
        return fact

    def value(self, name: str, labels: dict[str, str]) -> float:
        result = self.registry.get_sample_value(name, labels)
        return result or 0.0
