"""The gateway's feed decodes a delivery only with a schema registered for its class on the delivery topic,
as the SDK's subscriber does (tests/unit/test_sdk_schema_subjects.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

import sharebus_gateway.feed as feed_module
from sharebus_gateway.feed import FeedSource
from tests.unit.delivery_fakes import (
    PENALTY,
    POPULATION,
    AvroByIds,
    Consumer,
    Message,
    Registry,
    delivery_headers,
    framed,
)

SYSTEM = "yb-tax"
TOPIC = "sharebus.dlv.yb-tax"
CITY_CLASS = "101001001/000001"
PROJECTION = f"{TOPIC}.101001001.000001-value"
OTHER_PROJECTION = f"{TOPIC}.101002001.000001-value"
DISTRICT_CLASS_SUBJECT = "sharebus.src.301002001.000001-value"


@dataclass
class Kafka:
    """The feed's Kafka access: its one consumer reads ``messages``."""

    messages: list[Message]
    consumers: list[Consumer] = field(default_factory=list)

    def consumer(self, config: dict[str, Any]) -> Consumer:
        self.consumers.append(Consumer(self.messages))
        return self.consumers[-1]

    def private_group(self, purpose: str) -> str:
        return f"sharebus-gateway.{purpose}-1"


@dataclass
class Settings:
    kafka: Kafka
    namespace: str = "sharebus"
    registry_url: str = "http://registry.invalid"
    registry_auth: str | None = None
    feed_dedupe_window: int = 100
    feed_queue_size: int = 10
    feed_stall_timeout_s: float = 10.0
    feed_poll_records: int = 100


def message(offset: int, schema_id: int, value: dict[str, Any], data_class: str = CITY_CLASS) -> Message:
    return Message(
        TOPIC, offset, delivery_headers(data_class, str(offset), SYSTEM), framed(schema_id, POPULATION, value)
    )


def feed(monkeypatch: pytest.MonkeyPatch, registry: Registry, avro: AvroByIds, messages: list[Message]) -> FeedSource:
    """yb-tax's feed over fakes, from offset 0: the registry and deserializer it makes are ``registry``, ``avro``."""
    monkeypatch.setattr(feed_module, "registry_client", lambda url, auth: registry)
    monkeypatch.setattr(feed_module, "AvroDeserializer", lambda client: avro)
    source = FeedSource(Settings(Kafka(messages)), TOPIC, SYSTEM)  # type: ignore[arg-type]
    source.positions = {0: 0}
    return source


def test_a_delivery_whose_id_is_registered_only_under_another_subject_is_skipped_not_decoded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, the feed decoded by id alone: a city record under id 1, which the district's registry holds
    for a district class, was decoded with the district's schema and sent to the client as wrong values.
    Now it is skipped with the subjects named, and the feed goes on to the next record."""
    registry = Registry({1: [[DISTRICT_CLASS_SUBJECT]], 2: [[PROJECTION]]})
    avro = AvroByIds({1: PENALTY, 2: POPULATION})
    good = {"name": "李四", "id_number": "***"}
    source = feed(
        monkeypatch, registry, avro, [message(0, 1, {"name": "张三", "id_number": "110"}), message(1, 2, good)]
    )

    with caplog.at_level(logging.WARNING, logger="sharebus_gateway.feed"):
        events = source.read(10, 0.1)

    assert avro.decoded_with == [2]  # never with the district's schema
    assert [event.data["value"] for event in events] == [good]
    assert source.positions == {0: 2}  # past both: the skipped record does not stall the feed
    assert "not decoding sharebus.dlv.yb-tax[0]@0" in caplog.text
    assert f"schema id 1 is registered under ['{DISTRICT_CLASS_SUBJECT}']" in caplog.text
    assert PROJECTION in caplog.text


def test_a_projection_imported_after_its_id_was_seen_is_asked_once_more_and_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Id 7 first seen under another class's projection; this class's subject is imported with the same id
    later (the follower imports one subject at a time): the kept answer does not match, so it is asked again."""
    registry = Registry({7: [[OTHER_PROJECTION], [OTHER_PROJECTION, PROJECTION]]})
    first, second = {"name": "a", "id_number": "1"}, {"name": "b", "id_number": "2"}
    messages = [message(0, 7, first, "101002001/000001"), message(1, 7, second)]
    source = feed(monkeypatch, registry, AvroByIds({7: POPULATION}), messages)

    assert [event.data["value"] for event in source.read(10, 0.1)] == [first, second]
    assert registry.asked == [7, 7]


def test_an_id_seen_for_the_first_time_is_asked_once_even_when_it_does_not_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = Registry({1: [[DISTRICT_CLASS_SUBJECT]]})
    source = feed(monkeypatch, registry, AvroByIds({1: PENALTY}), [message(0, 1, {"name": "a", "id_number": "1"})])
    assert source.read(10, 0.1) == []
    assert registry.asked == [1]
