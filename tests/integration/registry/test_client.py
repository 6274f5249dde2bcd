"""The registry through the real confluent-kafka client, serializer and deserializer."""

from __future__ import annotations

import json
import struct

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.registry.schemas import V1, V2, person
from tests.support.registry import RegistryProcess

pytestmark = pytest.mark.broker


def test_the_avro_serializer_round_trips_records(registry: RegistryProcess, client: SchemaRegistryClient) -> None:
    context = SerializationContext("gov.people", MessageField.VALUE)
    serializer = AvroSerializer(client, V2.schema_str)
    records = [{"name": "Ada", "age": 36}, {"name": "Grace", "age": 85}]
    payloads = [serializer(record, context) for record in records]
    assert payloads[0] is not None

    registered = client.get_latest_version("gov.people-value")
    magic, schema_id = struct.unpack(">bI", payloads[0][:5])
    assert (magic, schema_id) == (0, registered.schema_id)

    # A client with empty caches has to fetch the writer schema by id.
    with registry.client() as fresh:
        deserializer = AvroDeserializer(fresh)
        assert [deserializer(payload, context) for payload in payloads] == records


def test_a_reader_schema_resolves_data_written_with_an_older_version(client: SchemaRegistryClient) -> None:
    context = SerializationContext("gov.people", MessageField.VALUE)
    old_payload = AvroSerializer(client, V1.schema_str)({"name": "Ada"}, context)
    AvroSerializer(client, V2.schema_str)({"name": "Bob", "age": 1}, context)
    deserializer = AvroDeserializer(client, V2.schema_str)
    assert deserializer(old_payload, context) == {"name": "Ada", "age": 0}


def test_register_then_read_back_by_id_subject_version_and_latest(client: SchemaRegistryClient) -> None:
    first = client.register_schema("people-value", V1)
    second = client.register_schema("people-value", V2)
    assert second == first + 1

    assert json.loads(client.get_schema(first).schema_str or "") == json.loads(V1.schema_str or "")
    by_version = client.get_version("people-value", 1)
    assert (by_version.subject, by_version.version, by_version.schema_id) == ("people-value", 1, first)
    latest = client.get_latest_version("people-value")
    assert (latest.version, latest.schema_id) == (2, second)
    assert json.loads(latest.schema.schema_str or "") == json.loads(V2.schema_str or "")

    looked_up = client.lookup_schema("people-value", V2)
    assert (looked_up.version, looked_up.schema_id) == (2, second)
    assert client.get_subjects() == ["people-value"]
    assert client.get_versions("people-value") == [1, 2]
    assert client.get_schema_types() == ["AVRO"]


def test_ids_are_shared_across_subjects_and_re_registering_adds_no_version(
    registry: RegistryProcess, client: SchemaRegistryClient
) -> None:
    schema_id = client.register_schema("a-value", V1)
    reformatted = Schema(json.dumps(json.loads(V1.schema_str or ""), indent=4), "AVRO")
    with registry.client() as uncached:
        assert uncached.register_schema("b-value", reformatted) == schema_id
        assert uncached.register_schema("a-value", reformatted) == schema_id
    assert client.get_versions("a-value") == [1]
    pairs = {(pair.subject, pair.version) for pair in client.get_schema_versions(schema_id)}
    assert pairs == {("a-value", 1), ("b-value", 1)}
    assert client.get_subjects_by_schema_id(schema_id) == ["a-value", "b-value"]
    assert client.register_schema("c-value", person(name="Other")) == schema_id + 1


def test_soft_and_permanent_deletes(client: SchemaRegistryClient) -> None:
    client.register_schema("people-value", V1)
    client.register_schema("people-value", V2)

    assert client.delete_version("people-value", 2) == 2
    assert client.get_versions("people-value") == [1]
    assert client.get_versions("people-value", deleted=True) == [1, 2]
    assert client.get_version("people-value", 2, deleted=True).version == 2
    assert client.delete_version("people-value", 2, permanent=True) == 2
    assert client.get_versions("people-value", deleted=True) == [1]

    assert client.delete_subject("people-value") == [1]
    assert client.get_subjects() == []
    assert client.get_subjects(deleted=True) == ["people-value"]
    assert client.delete_subject("people-value", permanent=True) == [1]
    assert client.get_subjects(deleted=True) == []
