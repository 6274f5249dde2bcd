"""A delivery topic's readers over fakes (no Kafka, no registry): the SDK's Subscriber and the gateway's feed.

The messages, consumer, registry and deserializer stand in for what confluent-kafka and the schema registry
hand those readers; ``subscriber`` builds a Subscriber over them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import fastavro
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationContext

from sharebus_core import headers as h
from sharebus_core.recent_ids import RecentIds
from sharebus_core.schema_subjects import SchemaSubjects
from sharebus_core.topics import TopicNames
from sharebus_sdk.batches import BatchAssembler
from sharebus_sdk.decoding import SCHEMA_NOT_FOUND, DeliveryDecoder, Deserializer
from sharebus_sdk.offsets import OffsetBook
from sharebus_sdk.subscriber import ErrorCallback, Subscriber, SubscriberSettings, log_and_skip

POPULATION = {
    "type": "record",
    "name": "Population",
    "fields": [{"name": "name", "type": "string"}, {"name": "id_number", "type": "string"}],
}
PENALTY = {
    "type": "record",
    "name": "Penalty",
    "fields": [{"name": "uscc", "type": "string"}, {"name": "decision", "type": "string"}],
}


def framed(schema_id: int, schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    """``value`` as a Confluent serializer writes it: magic byte, schema id, Avro body."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), value)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def delivery_headers(data_class: str, record_id: str, consumer: str, provider: str = "BDB") -> dict[str, bytes]:
    """The headers the router puts on a real-time delivery."""
    return {
        h.DATA_CLASS: data_class.encode(),
        h.PROVIDER: provider.encode(),
        h.CONSUMER: consumer.encode(),
        h.RECORD_ID: record_id.encode(),
    }


class Message:
    """A consumed message as confluent-kafka hands it over (the fields the readers use)."""

    def __init__(self, topic: str, offset: int, headers: Mapping[str, bytes], value: bytes | None) -> None:
        self._topic, self._offset, self._value = topic, offset, value
        self.headers_map = dict(headers)

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self.headers_map.items())

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> None:
        return None


class Consumer:
    """Hands out ``messages`` in order: one per ``poll`` (the Subscriber), up to ``n`` per ``consume`` (the feed)."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def poll(self, timeout: float) -> Message | None:
        return self.messages.pop(0) if self.messages else None

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        taken, self.messages = self.messages[:num_messages], self.messages[num_messages:]
        return taken

    def store_offsets(self, offsets: Any) -> None:
        pass


class Registry:
    """A registry's subjects of each id as a reader sees them, answered in turn (the last one stays)."""

    def __init__(self, subjects: dict[int, list[list[str]]]) -> None:
        self.subjects = subjects
        self.asked: list[int] = []

    def get_subjects_by_schema_id(self, schema_id: int) -> list[str]:
        self.asked.append(schema_id)
        answers = self.subjects.get(schema_id)
        if not answers:
            raise SchemaRegistryError(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")
        return answers.pop(0) if len(answers) > 1 else answers[0]


class AvroByIds:
    """Decodes a framed value with the schema its id names in ``schemas``, as AvroDeserializer does with the
    registry's schema of that id, whatever the value was written with; ``decoded_with`` lists the ids used."""

    def __init__(self, schemas: dict[int, dict[str, Any]]) -> None:
        self.schemas = schemas
        self.decoded_with: list[int] = []

    def __call__(self, value: bytes | None, context: SerializationContext | None = None) -> Any:
        assert value is not None
        schema_id = int.from_bytes(value[1:5], "big")
        self.decoded_with.append(schema_id)
        return fastavro.schemaless_reader(io.BytesIO(value[5:]), fastavro.parse_schema(self.schemas[schema_id]))


class Identity:
    """A credential the broker never refuses."""

    def raise_if_refused(self) -> None:
        pass


def no_refusal(error: Exception, what: str) -> Exception | None:
    return None


def subscriber(
    system: str,
    messages: list[Message],
    deserializer: Deserializer,
    registry: Any = None,
    *,
    namespace: str = "sharebus",
    settings: SubscriberSettings | None = None,
    on_error: ErrorCallback = log_and_skip,
) -> Subscriber:
    """A Subscriber of ``system`` over fakes: ``messages`` are its delivery topic's, ``registry`` answers the
    subjects of ids (never asked for values that are not Confluent-framed), ``deserializer`` decodes."""
    made = object.__new__(Subscriber)
    made.settings = settings or SubscriberSettings()
    made.system, made.topic = system, TopicNames(namespace).delivery(system)
    made.identity = Identity()  # type: ignore[assignment]
    subjects = SchemaSubjects(registry, TopicNames(namespace), system)
    made._decoder = DeliveryDecoder(system, deserializer, subjects, no_refusal, made.settings.unknown_schema_wait_s)
    made._consumer = Consumer(messages)
    made._book, made._handed, made._batches = OffsetBook(), [], BatchAssembler()
    made._seen = RecentIds(made.settings.dedupe_window)
    made.duplicates = made.skipped = 0
    made._on_error = on_error
    return made
