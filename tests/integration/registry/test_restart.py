"""The log is the source of truth: a restarted registry comes back with the same ids and versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin._config import ConfigResource

from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from tests.integration.registry.schemas import V1, V2, person
from tests.support.registry import start_registry

pytestmark = pytest.mark.broker


def test_a_restart_replays_ids_versions_deletes_and_levels(
    kafka_admin: KafkaAccess, namespace: str, tmp_path: Path
) -> None:
    with (
        start_registry(kafka_admin, namespace, tmp_path) as first,
        first.client() as client,
    ):
        ids = [client.register_schema("people-value", V1), client.register_schema("people-value", V2)]
        shared = client.register_schema("others-value", V1)
        client.delete_version("people-value", 1)
        client.set_compatibility("others-value", "NONE")
        client.set_compatibility(level="FULL_TRANSITIVE")
        assert first.stop() == 0

    with (
        start_registry(kafka_admin, namespace, tmp_path) as second,
        second.client() as client,
    ):
        assert ids == [1, 2]
        assert shared == 1
        assert client.get_versions("people-value") == [2]
        assert client.get_versions("people-value", deleted=True) == [1, 2]
        assert client.get_latest_version("people-value").schema_id == 2
        assert client.get_version("others-value", 1).schema_id == 1
        assert json.loads(client.get_schema(2).schema_str or "") == json.loads(V2.schema_str or "")
        assert client.get_compatibility("others-value") == "NONE"
        assert client.get_compatibility() == "FULL_TRANSITIVE"
        assert client.register_schema("new-value", person(name="New")) == 3
        assert client.register_schema("people-value", V2) == 2
        assert client.get_versions("people-value") == [2]


def test_the_log_is_one_compacted_partition_of_confluent_records(
    kafka_admin: KafkaAccess, namespace: str, tmp_path: Path
) -> None:
    topic = TopicNames(namespace).schemas
    with (
        start_registry(kafka_admin, namespace, tmp_path) as registry,
        registry.client() as client,
    ):
        client.register_schema("people-value", V1)
        client.set_compatibility("people-value", "FULL")

    admin = kafka_admin.admin()
    metadata = admin.list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 1
    resource = ConfigResource("topic", topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"

    consumer = kafka_admin.consumer({"group.id": "inspect", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        messages = consumer.consume(num_messages=2, timeout=10)
    finally:
        consumer.close()
    assert [json.loads(message.key() or b"") for message in messages] == [
        {"keytype": "SCHEMA", "subject": "people-value", "version": 1, "magic": 1},
        {"keytype": "CONFIG", "subject": "people-value", "magic": 0},
    ]
    value = json.loads(messages[0].value() or b"")
    assert {key: value[key] for key in ("subject", "version", "id", "deleted")} == {
        "subject": "people-value",
        "version": 1,
        "id": 1,
        "deleted": False,
    }
    assert json.loads(messages[1].value() or b"") == {"compatibilityLevel": "FULL"}
