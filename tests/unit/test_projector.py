"""The router's projector splices only when the writer schema derives the projection's, and then gives
the same bytes as encoding; any other record is encoded."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro

from sharebus_core.wire import frame, unframe
from sharebus_router.projector import Projector, encoded
from sharebus_router.routes import Projection, Target
from sharebus_router.schema_cache import WriterSchema
from sharebus_rules.projection import derive_schema

V1: dict[str, Any] = {
    "type": "record",
    "name": "Person",
    "namespace": "gov.test",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "id_card", "type": "string"},
        {"name": "age", "type": "int"},
    ],
}
# Another version: a field added before the granted ones changes nothing the projection says, but age is a long.
V2: dict[str, Any] = {**V1, "fields": [*V1["fields"][:3], {"name": "age", "type": "long"}]}
RECORD = {"id": "p-1", "name": "Wang Fang", "id_card": "110101199003074514", "age": 34}
FIELDS = ("id", "id_card", "age")
MASKED = frozenset({"id_card"})


def projection() -> Projection:
    derived = derive_schema(V1, FIELDS, MASKED)
    return Projection(FIELDS, MASKED, 77, fastavro.parse_schema(derived), derived)


def target(projected: Projection | None) -> Target:
    return Target("hrss-si", "g-1", "sharebus.dlv.hrss-si", (), projected, None, None, None, None)


def published(schema_id: int, schema: dict[str, Any]) -> tuple[WriterSchema, bytes]:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, fastavro.parse_schema(schema), RECORD)
    writer = WriterSchema(schema_id, fastavro.parse_schema(schema), frozenset({"s"}), json.loads(json.dumps(schema)))
    return writer, frame(schema_id, stream.getvalue())


def test_a_record_of_the_schema_the_projection_derives_from_is_spliced_to_the_encoded_bytes() -> None:
    projector, projected = Projector(), projection()
    writer, value = published(5, V1)
    rendered = projector.render(target(projected), RECORD, value, writer, unframe(value)[1])
    assert rendered == encoded(projected, RECORD)
    assert projector._splicers[(5, 77)] is not None  # spliced, not encoded


def test_a_record_of_another_schema_version_is_encoded() -> None:
    projector, projected = Projector(), projection()
    writer, value = published(6, V2)
    rendered = projector.render(target(projected), RECORD, value, writer, unframe(value)[1])
    assert rendered == encoded(projected, RECORD)
    assert projector._splicers[(6, 77)] is None


def test_a_delivery_without_projection_is_the_published_bytes() -> None:
    writer, value = published(5, V1)
    assert Projector().render(target(None), RECORD, value, writer, unframe(value)[1]) is value
