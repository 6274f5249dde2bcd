"""The SDK Subscriber at its edges: an undecodable record, a revoked partition, what a repeat is."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import TopicPartition

from sharebus_core import headers as h
from sharebus_sdk import Delivery, Subscriber, SubscriberSettings
from tests.integration.conftest import Bus
from tests.support.kafka import end_offsets, eventually, read_all
from tests.support.names import unique
from tests.support.records import ENTERPRISE, publish_enterprises

if TYPE_CHECKING:
    from sharebus_sdk.subscriber import Undecodable

SYSTEM = "tax-levy"


def _settings(bus: Bus, group: str) -> SubscriberSettings:
    return SubscriberSettings.model_validate({**bus.settings.model_dump(), "group_id": group})


def _deliveries(subscriber: Subscriber, idle_timeout_s: float = 8.0) -> list[Delivery]:
    """Everything the subscriber hands out until it goes idle (so a record after the junk is reached too)."""
    received: list[Delivery] = []
    for item in subscriber.records(idle_timeout_s=idle_timeout_s):
        assert isinstance(item, Delivery)
        received.append(item)
    return received


def _ends(bus: Bus, topic: str) -> dict[int, int]:
    probe = bus.access.consumer({"group.id": unique("probe")})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        probe.close()


def _feed_with_junk_in_the_middle(bus: Bus) -> str:
    """tax-levy's delivery topic: records 0 and 1, then a record no schema decodes (in every
    partition), then 2 and 3."""
    topic = bus.topics.delivery(SYSTEM)
    publish_enterprises(bus.settings, range(2))
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 2) == 2
    partitions = sorted(_ends(bus, topic))
    producer = bus.access.producer()
    for partition in partitions:
        producer.produce(topic, key=b"junk", value=b"not avro at all", partition=partition)
    assert producer.flush(10) == 0
    publish_enterprises(bus.settings, range(2, 4))
    total = 4 + len(partitions)
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= total) == total
    return topic


def test_an_undecodable_record_goes_to_the_callback_and_is_committed_past(bus: Bus) -> None:
    topic = _feed_with_junk_in_the_middle(bus)
    group = unique(f"{bus.namespace}.{SYSTEM}.sub")
    errors: list[Undecodable] = []
    with Subscriber(SYSTEM, _settings(bus, group), on_error=errors.append) as subscriber:
        received = _deliveries(subscriber)
        subscriber.commit()
        skipped = subscriber.skipped
    ends = _ends(bus, topic)
    assert sorted(d.trace_id or "" for d in received) == [f"trace-{i}" for i in range(4)]
    assert skipped == len(ends)
    assert sorted((e.topic, e.partition, e.key) for e in errors) == [(topic, p, b"junk") for p in sorted(ends)]
    assert "cannot decode the record" in str(errors[0].error)

    probe = bus.access.consumer({"group.id": group})
    try:
        committed = probe.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    finally:
        probe.close()
    # Past the junk everywhere: a restart does not meet it again.
    assert {tp.partition: tp.offset for tp in committed} == ends


def test_by_default_an_undecodable_record_is_logged_and_skipped(bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    _feed_with_junk_in_the_middle(bus)
    group = unique(f"{bus.namespace}.{SYSTEM}.sub")
    with (
        caplog.at_level(logging.WARNING, logger="sharebus_sdk.subscriber"),
        Subscriber(SYSTEM, _settings(bus, group)) as subscriber,
    ):
        received = _deliveries(subscriber)
    assert sorted(d.trace_id or "" for d in received) == [f"trace-{i}" for i in range(4)]
    assert "skipping an undecodable record" in caplog.text


def test_two_members_share_a_feed_through_a_revocation(bus: Bus) -> None:
    topic = bus.topics.delivery(SYSTEM)
    publish_enterprises(bus.settings, range(6))
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 6) == 6
    group = unique(f"{bus.namespace}.{SYSTEM}.sub")
    seen: set[str | None] = set()
    with Subscriber(SYSTEM, _settings(bus, group)) as first:
        item = eventually(lambda: first.poll(1.0), lambda got: got is not None, 30)
        assert isinstance(item, Delivery)
        seen.add(item.trace_id)
        # A second member joins: the first one's partition is revoked while it holds a record.
        with Subscriber(SYSTEM, _settings(bus, group)) as second:
            for _ in range(60):
                for member in (first, second):
                    got = member.poll(0.5)
                    if isinstance(got, Delivery):
                        seen.add(got.trace_id)
                if len(seen) == 6:
                    break
    assert seen == {f"trace-{i}" for i in range(6)}


def test_a_repeat_is_the_same_record_id_in_the_same_providers_class(bus: Bus) -> None:
    """A record id is the publisher's choice: another department's record with the same id is no repeat."""
    topic = bus.topics.delivery(SYSTEM)
    publish_enterprises(bus.settings, range(1))
    [original] = read_all(bus.access, topic, 1)
    headers = h.header_list(original.headers())

    def copy(name: str, value: bytes) -> h.HeaderList:
        return [(k, value if k == name else v) for k, v in headers]

    producer = bus.access.producer()
    for copied in (headers, copy(h.PROVIDER, b"OTHER"), copy(h.DATA_CLASS, b"399001001/000001")):
        producer.produce(topic, original.value(), original.key(), original.partition() or 0, headers=list(copied))
    assert producer.flush(10) == 0
    group = unique(f"{bus.namespace}.{SYSTEM}.sub")
    with Subscriber(SYSTEM, _settings(bus, group)) as subscriber:
        received = _deliveries(subscriber)
        duplicates = subscriber.duplicates
    assert {d.record_id for d in received} == {h.text(h.header_map(headers), h.RECORD_ID)}
    # The copy relabelled as another class keeps the enterprise class's schema id, which is registered for
    # no subject of that class: the subscriber refuses to decode it (the schema subject check), so it is
    # neither handed out nor counted as a repeat.
    assert sorted((d.provider, d.data_class) for d in received) == [("AMR", ENTERPRISE), ("OTHER", ENTERPRISE)]
    assert duplicates == 1


class HandlingFailed(Exception):
    """The caller's own failure while it handles a delivery."""


def _fail_on_the_first_delivery(bus: Bus, group: str, failed_on: list[str | None]) -> None:
    with Subscriber(SYSTEM, _settings(bus, group)) as subscriber:
        item = eventually(lambda: subscriber.poll(1.0), lambda got: got is not None, 30)
        assert isinstance(item, Delivery)
        failed_on.append(item.trace_id)
        raise HandlingFailed


def test_a_delivery_whose_handling_raised_in_a_with_block_is_received_again(bus: Bus) -> None:
    """Leaving the block on the caller's exception must not commit the record it failed on (at-least-once)."""
    topic = bus.topics.delivery(SYSTEM)
    publish_enterprises(bus.settings, range(3))
    assert eventually(lambda: end_offsets(bus.access, topic), lambda n: n >= 3) == 3
    group = unique(f"{bus.namespace}.{SYSTEM}.sub")
    failed_on: list[str | None] = []
    with pytest.raises(HandlingFailed):
        _fail_on_the_first_delivery(bus, group, failed_on)
    with Subscriber(SYSTEM, _settings(bus, group)) as second:
        again = _deliveries(second)
    assert failed_on[0] in {d.trace_id for d in again}, "the record whose handling failed was committed past"
    assert {d.trace_id for d in again} == {f"trace-{i}" for i in range(3)}
