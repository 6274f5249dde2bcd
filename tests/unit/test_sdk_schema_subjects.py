"""A subscriber decodes a record only with a schema registered for its class on its delivery topic."""

from __future__ import annotations

import time

import pytest

from sharebus_sdk.subscriber import Delivery, Subscriber, SubscriberSettings, Undecodable
from tests.unit.delivery_fakes import PENALTY, POPULATION, AvroByIds, Message, Registry, delivery_headers, framed
from tests.unit.delivery_fakes import subscriber as fake_subscriber

SYSTEM = "yb-tax"
TOPIC = "sharebus.dlv.yb-tax"
CITY_CLASS = "101001001/000001"
PROJECTION = f"{TOPIC}.101001001.000001-value"  # the city's projection for yb-tax, imported with its id
DISTRICT_CLASS_SUBJECT = "sharebus.src.301002001.000001-value"


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


def message(value: bytes, offset: int = 0, data_class: str = CITY_CLASS) -> Message:
    return Message(TOPIC, offset, delivery_headers(data_class, str(offset), SYSTEM), value)


def subscriber(
    registry: Registry, deserializer: AvroByIds, messages: list[Message], errors: list[Undecodable] | None = None
) -> Subscriber:
    """yb-tax's Subscriber over fakes, waiting up to 2 s (of the fake clock) for a schema; skips go to ``errors``."""
    settings = SubscriberSettings(unknown_schema_wait_s=2.0)
    on_error = errors.append if errors is not None else (lambda record: None)
    return fake_subscriber(SYSTEM, messages, deserializer, registry, settings=settings, on_error=on_error)


def test_a_city_record_whose_id_means_a_district_schema_here_is_skipped_not_decoded() -> None:
    """Before, the subscriber decoded by id alone: with a district registry handing out the city's ids, the
    city's record (id 1, the city's projection) was decoded with the district's own schema under id 1 and
    handed out as wrong values, with no error."""
    city_record = {"name": "张三", "id_number": "11010519491231002X"}
    registry, avro = Registry({1: [[DISTRICT_CLASS_SUBJECT]]}), AvroByIds({1: PENALTY})
    errors: list[Undecodable] = []
    sub = subscriber(registry, avro, [message(framed(1, POPULATION, city_record))], errors)

    assert sub.poll(0.1) is None
    assert avro.decoded_with == []  # never decoded with the district's schema
    assert sub.skipped == 1
    (undecodable,) = errors
    message_text = str(undecodable.error)
    assert "schema id 1 is registered under ['sharebus.src.301002001.000001-value']" in message_text
    assert PROJECTION in message_text


def test_a_projection_imported_a_moment_after_its_id_is_asked_again_and_then_decoded() -> None:
    """An id already known under another subject of the topic may get this class's subject a moment later (the
    follower imports each subject with the id): asked again within the unknown-schema wait, then decoded."""
    value = {"name": "李四", "id_number": "***"}
    other = f"{TOPIC}.101002001.000001-value"
    registry = Registry({7: [[other], [other, PROJECTION]]})
    sub = subscriber(registry, AvroByIds({7: POPULATION}), [message(framed(7, POPULATION, value))])

    delivery = sub.poll(0.1)
    assert isinstance(delivery, Delivery)
    assert delivery.value == value
    assert registry.asked == [7, 7]


def test_the_subjects_of_an_id_are_asked_once() -> None:
    value = {"name": "王五", "id_number": "***"}
    registry = Registry({3: [[PROJECTION]]})
    messages = [message(framed(3, POPULATION, value), offset) for offset in range(5)]
    sub = subscriber(registry, AvroByIds({3: POPULATION}), messages)

    assert [sub.poll(0.1) is not None for _ in range(5)] == [True] * 5
    assert registry.asked == [3]


def test_a_record_of_the_class_written_with_its_own_schema_is_decoded() -> None:
    """A system granted every field unmasked receives the published bytes: the class's own subject's id."""
    value = {"uscc": "91500000MA5U7X", "decision": "fine"}
    registry = Registry({10_000_001: [["sharebus.src.301002001.000001-value"]]})
    messages = [message(framed(10_000_001, PENALTY, value), data_class="301002001/000001")]
    delivery = subscriber(registry, AvroByIds({10_000_001: PENALTY}), messages).poll(0.1)
    assert isinstance(delivery, Delivery)
    assert delivery.value == value


def test_no_class_header_is_no_class_to_decode_for() -> None:
    registry = Registry({3: [[PROJECTION]]})
    errors: list[Undecodable] = []
    unclassed = Message(TOPIC, 0, {}, framed(3, POPULATION, {"name": "a", "id_number": "b"}))
    sub = subscriber(registry, AvroByIds({3: POPULATION}), [unclassed], errors)
    assert sub.poll(0.1) is None
    assert sub.skipped == 1
    assert "(no class header)" in str(errors[0].error)
