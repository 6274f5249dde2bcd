"""A subscriber decodes a record only with a schema registered for its class on its delivery topic."""

from __future__ import annotations

import io
import time
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sharebus_core import headers as h
from sharebus_core.recent_ids import RecentIds
from sharebus_core.topics import TopicNames
from sharebus_sdk.batches import BatchAssembler
from sharebus_sdk.offsets import OffsetBook
from sharebus_sdk.schema_subjects import SchemaSubjects
from sharebus_sdk.subscriber import SCHEMA_NOT_FOUND, Delivery, Subscriber, SubscriberSettings, Undecodable

TOPIC = "sharebus.dlv.yb-tax"
CITY_CLASS = "101001001/000001"
PROJECTION = f"{TOPIC}.101001001.000001-value"  # the city's projection for yb-tax, imported with its id
DISTRICT_CLASS_SUBJECT = "sharebus.src.301002001.000001-value"
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
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), value)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


class Registry:
    """The district's registry as the subscriber sees it: the subjects of each id, answered in turn."""

    def __init__(self, subjects: dict[int, list[list[str]]]) -> None:
        self.subjects = subjects
        self.asked: list[int] = []

    def get_subjects_by_schema_id(self, schema_id: int) -> list[str]:
        self.asked.append(schema_id)
        answers = self.subjects.get(schema_id)
        if not answers:
            raise SchemaRegistryError(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")
        return answers.pop(0) if len(answers) > 1 else answers[0]


class Message:
    def __init__(self, value: bytes, offset: int = 0, data_class: str = CITY_CLASS) -> None:
        self._value, self._offset = value, offset
        self._headers = [(h.DATA_CLASS, data_class.encode()), (h.PROVIDER, b"BDB"), (h.RECORD_ID, str(offset).encode())]

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return None

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


class Consumer:
    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def poll(self, timeout: float) -> Message | None:
        return self.messages.pop(0) if self.messages else None

    def store_offsets(self, offsets: Any) -> None:
        pass


class Identity:
    def raise_if_refused(self) -> None:
        pass

    def translate_registry(self, error: Exception, what: str) -> Exception | None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake.monotonic)
    monkeypatch.setattr(time, "sleep", fake.sleep)
    return fake


class Harness(Subscriber):
    """A Subscriber over fakes (no Kafka), with the ids it decoded with and the records it skipped."""

    decoded_with: list[int]
    errors: list[Undecodable]


def subscriber(registry: Registry, schemas: dict[int, dict[str, Any]], messages: list[Message]) -> Harness:
    """A Subscriber over fakes (no Kafka): its registry's subjects are ``registry``'s, its schemas ``schemas``."""
    made = object.__new__(Harness)
    made.settings = SubscriberSettings(unknown_schema_wait_s=2.0)
    made.system, made.topic = "yb-tax", TOPIC
    made.identity = Identity()  # type: ignore[assignment]
    made.decoded_with = []

    def deserialize(value: bytes, context: Any) -> Any:
        schema_id = int.from_bytes(value[1:5], "big")
        made.decoded_with.append(schema_id)
        return fastavro.schemaless_reader(io.BytesIO(value[5:]), fastavro.parse_schema(schemas[schema_id]))

    made._deserializer = deserialize
    made._subjects = SchemaSubjects(registry, TopicNames("sharebus"), "yb-tax")  # type: ignore[arg-type]
    made._consumer = Consumer(messages)
    made._book, made._handed, made._batches = OffsetBook(), [], BatchAssembler()
    made._seen = RecentIds(100)
    made.duplicates = made.skipped = 0
    made.errors = []
    made._on_error = made.errors.append
    return made


def test_a_city_record_whose_id_means_a_district_schema_here_is_skipped_not_decoded() -> None:
    """Before, the subscriber decoded by id alone: with a district registry handing out the city's ids, the
    city's record (id 1, the city's projection) was decoded with the district's own schema under id 1 and
    handed out as wrong values, with no error."""
    city_record = {"name": "张三", "id_number": "11010519491231002X"}
    registry = Registry({1: [[DISTRICT_CLASS_SUBJECT]]})
    sub = subscriber(registry, {1: PENALTY}, [Message(framed(1, POPULATION, city_record))])

    assert sub.poll(0.1) is None
    assert sub.decoded_with == []  # never decoded with the district's schema
    assert sub.skipped == 1
    (undecodable,) = sub.errors
    message = str(undecodable.error)
    assert "schema id 1 is registered under ['sharebus.src.301002001.000001-value']" in message
    assert PROJECTION in message


def test_a_projection_imported_a_moment_after_its_id_is_asked_again_and_then_decoded() -> None:
    """An id already known under another subject of the topic may get this class's subject a moment later (the
    follower imports each subject with the id): asked again within the unknown-schema wait, then decoded."""
    value = {"name": "李四", "id_number": "***"}
    other = f"{TOPIC}.101002001.000001-value"
    registry = Registry({7: [[other], [other, PROJECTION]]})
    sub = subscriber(registry, {7: POPULATION}, [Message(framed(7, POPULATION, value))])

    delivery = sub.poll(0.1)
    assert isinstance(delivery, Delivery)
    assert delivery.value == value
    assert registry.asked == [7, 7]


def test_the_subjects_of_an_id_are_asked_once() -> None:
    value = {"name": "王五", "id_number": "***"}
    registry = Registry({3: [[PROJECTION]]})
    messages = [Message(framed(3, POPULATION, value), offset) for offset in range(5)]
    sub = subscriber(registry, {3: POPULATION}, messages)

    assert [sub.poll(0.1) is not None for _ in range(5)] == [True] * 5
    assert registry.asked == [3]


def test_a_record_of_the_class_written_with_its_own_schema_is_decoded() -> None:
    """A system granted every field unmasked receives the published bytes: the class's own subject's id."""
    value = {"uscc": "91500000MA5U7X", "decision": "fine"}
    registry = Registry({10_000_001: [["sharebus.src.301002001.000001-value"]]})
    messages = [Message(framed(10_000_001, PENALTY, value), data_class="301002001/000001")]
    delivery = subscriber(registry, {10_000_001: PENALTY}, messages).poll(0.1)
    assert isinstance(delivery, Delivery)
    assert delivery.value == value


def test_no_class_header_is_no_class_to_decode_for() -> None:
    registry = Registry({3: [[PROJECTION]]})
    sub = subscriber(registry, {3: POPULATION}, [Message(framed(3, POPULATION, {"name": "a", "id_number": "b"}))])
    sub._consumer.messages[0]._headers = []
    assert sub.poll(0.1) is None
    assert sub.skipped == 1
    assert "(no class header)" in str(sub.errors[0].error)
