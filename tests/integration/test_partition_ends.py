"""The router's start-up reads of many partitions at once: batched ends, and each topic's newest record time."""

from __future__ import annotations

import time

from confluent_kafka import TopicPartition

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import last_record_times, partition_ends, partition_starts, partition_tails
from sharebus_provision import TopicSpec, ensure_topics
from tests.support.names import unique


def test_ends_and_newest_times_over_several_topics(kafka_admin: KafkaAccess) -> None:
    busy, quiet = unique("busy"), unique("quiet")
    ensure_topics(kafka_admin, [TopicSpec(busy, 3), TopicSpec(quiet, 2)])
    producer = kafka_admin.producer({"acks": "all"})
    # Recent stamps: a record older than the topic's retention may be deleted before it is read.
    base_ms = (int(time.time()) - 3600) * 1000
    for partition, count in ((0, 3), (2, 1)):
        for i in range(count):
            producer.produce(busy, value=b"x", partition=partition, timestamp=base_ms + partition * 1000 + i)
    assert producer.flush(30) == 0

    partitions = [TopicPartition(busy, p) for p in range(3)] + [TopicPartition(quiet, p) for p in range(2)]
    ends = partition_ends(kafka_admin, partitions)
    assert ends == {(busy, 0): (0, 3), (busy, 1): (0, 0), (busy, 2): (0, 1), (quiet, 0): (0, 0), (quiet, 1): (0, 0)}

    newest = last_record_times(kafka_admin, [busy, quiet, unique("absent")])
    assert newest == {busy: (base_ms + 2000) / 1000}
    assert partition_ends(kafka_admin, []) == {}

    # Where a consumer without a committed offset starts (the router's data path at an assignment):
    # the log start, which retention or a deletion moves past 0.
    admin = kafka_admin.admin()  # kept: a client collected while a request is pending never answers it
    for future in admin.delete_records([TopicPartition(busy, 0, 2)], request_timeout=30).values():
        future.result(timeout=60)
    assert partition_starts(kafka_admin, partitions) == {
        (busy, 0): 2,
        (busy, 1): 0,
        (busy, 2): 0,
        (quiet, 0): 0,
        (quiet, 1): 0,
    }
    assert partition_starts(kafka_admin, []) == {}


def test_the_tails_of_several_topics_are_read_together_past_a_transactions_marker(kafka_admin: KafkaAccess) -> None:
    busy, other, quiet = unique("tails-busy"), unique("tails-other"), unique("tails-quiet")
    ensure_topics(kafka_admin, [TopicSpec(busy, 2), TopicSpec(other, 1), TopicSpec(quiet, 1)])
    producer = kafka_admin.producer({"acks": "all"})
    for i in range(5):
        producer.produce(busy, value=f"b{i}".encode(), partition=0)
    producer.produce(busy, value=b"p1", partition=1)
    assert producer.flush(30) == 0
    # A committed transaction: its marker takes the partition's last offset.
    transactional = kafka_admin.producer({"transactional.id": unique("tails-tx")})
    transactional.init_transactions(30)
    transactional.begin_transaction()
    transactional.produce(other, value=b"in-tx")
    transactional.commit_transaction(30)

    tails = partition_tails(kafka_admin, [busy, other, quiet, unique("absent")], span=2)
    assert sorted(msg.value() or b"" for msg in tails[busy]) == [b"b3", b"b4", b"p1"]
    assert [msg.value() for msg in tails[other]] == [b"in-tx"]  # offsets 0 and 1 (the marker)
    assert quiet not in tails
    assert partition_tails(kafka_admin, [], span=2) == {}
