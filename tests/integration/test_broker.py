"""The project's own broker launcher: a failed start says why, and data survives a restart."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sharebus_broker import BrokerSettings, BrokerStartError, KafkaBroker
from sharebus_provision import TopicSpec, ensure_topics
from tests.support.names import unique


def test_a_failed_storage_format_says_why(tmp_path: Path) -> None:
    # A heap this small makes the JVM refuse to start at all.
    settings = BrokerSettings(port=0, controller_port=0, data_dir=tmp_path / "data", heap="1k")
    with pytest.raises(BrokerStartError) as info:
        KafkaBroker(settings).start()
    assert "formatting Kafka storage" in str(info.value)
    assert "heap size" in str(info.value)


def test_a_broker_that_dies_at_start_shows_its_log_tail(tmp_path: Path) -> None:
    # Storage formatted for another node: the broker starts, then exits, and the error carries the log.
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "meta.properties").write_text("version=1\nnode.id=7\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\n")
    settings = BrokerSettings(port=0, controller_port=0, data_dir=tmp_path / "data", heap="256m")
    with pytest.raises(BrokerStartError) as info:
        KafkaBroker(settings).start()
    message = str(info.value)
    assert "exited with code" in message
    assert "Last lines of" in message
    assert "node" in message.lower()


def test_a_taken_port_is_refused_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = BrokerSettings(port=port, controller_port=0, data_dir=tmp_path / "data")
        with pytest.raises(BrokerStartError, match=f"port {port} .* already in use"):
            KafkaBroker(settings).start()


def test_records_survive_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    settings = BrokerSettings(port=0, controller_port=0, data_dir=tmp_path / "data", heap="512m")
    topic = unique("persist")
    with KafkaBroker(settings) as broker:
        ensure_topics(broker.admin_access, [TopicSpec(topic, 1)])
        producer = broker.admin_access.producer()
        for i in range(10):
            producer.produce(topic, value=f"v{i}".encode())
        assert producer.flush(10) == 0
    with KafkaBroker(settings) as broker:
        assert topic in broker.admin_access.admin().list_topics(timeout=10).topics
        consumer = broker.admin_access.consumer({"group.id": unique("g"), "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        values: list[bytes] = []
        for _ in range(100):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value() or b"")
            if len(values) == 10:
                break
        consumer.close()
    assert values == [f"v{i}".encode() for i in range(10)]
