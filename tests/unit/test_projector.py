"""The router's projector splices only when the writer schema derives the projection's, and then gives
the same bytes as encoding; any other record is encoded."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro

from sharebus_core.wire import frame, unframe
from sharebus_router.decoding import Decoded, walked
from sharebus_router.projector import Projector, encoded
from sharebus_router.routes import Projection, Target
from sharebus_router.schema_cache import WriterSchema
from sharebus_rules.projection import derive_schema
from sharebus_rules.walk import Walker

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


def checked(writer: WriterSchema, value: bytes) -> Decoded:
    """As the handler has it after decoding the record in full."""
    return Decoded(writer, bytes(unframe(value)[1]), None, RECORD)


def test_a_record_of_the_schema_the_projection_derives_from_is_spliced_to_the_encoded_bytes() -> None:
    projector, projected = Projector(), projection()
    writer, value = published(5, V1)
    rendered = projector.render(target(projected), checked(writer, value), value)
    assert rendered == encoded(projected, RECORD)
    assert projector._splicers[(5, 77)] is not None  # spliced, not encoded


def test_a_walked_record_is_spliced_at_the_walks_bounds_and_decoded_only_for_its_masked_field() -> None:
    projector, projected = Projector(), projection()
    writer, value = published(5, V1)
    walker = Walker.compile(writer.parsed)
    assert walker is not None
    record = walked(writer, walker, bytes(unframe(value)[1]))
    assert record._record is None
    assert projector.render(target(projected), record, value) == encoded(projected, RECORD)
    assert record._record == RECORD  # the masked id_card's text came from the value, decoded once


def test_a_walked_record_whose_projection_masks_nothing_is_never_decoded() -> None:
    fields = ("id", "age")
    derived = derive_schema(V1, fields, frozenset())
    unmasked = Projection(fields, frozenset(), 78, fastavro.parse_schema(derived), derived)
    writer, value = published(5, V1)
    walker = Walker.compile(writer.parsed)
    assert walker is not None
    record = walked(writer, walker, bytes(unframe(value)[1]))
    rendered = Projector().render(target(unmasked), record, value)
    assert rendered == encoded(unmasked, RECORD)
    assert record._record is None


def test_a_record_of_another_schema_version_is_encoded() -> None:
    projector, projected = Projector(), projection()
    writer, value = published(6, V2)
    rendered = projector.render(target(projected), checked(writer, value), value)
    assert rendered == encoded(projected, RECORD)
    assert projector._splicers[(6, 77)] is None


def test_a_delivery_without_projection_is_the_published_bytes() -> None:
    writer, value = published(5, V1)
    assert Projector().render(target(None), checked(writer, value), value) is value
