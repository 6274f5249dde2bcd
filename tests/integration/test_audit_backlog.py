"""The auditor on a backlog: bounded transactions, chain heads read from the log's end, facts kept long enough.

No router runs here: the facts are planted on the facts topic (as the admin), in the router's shape,
so a backlog of any size builds up in seconds. ``SHAREBUS_TEST_AUDIT_BACKLOG`` sets how many small
facts wait (20,000 by default; the README's figure for 200,000 was measured with it).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Message
from confluent_kafka.admin._config import ConfigResource

from sharebus_audit.auditor import chain_heads
from sharebus_cli.main import main as cli
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Service
from sharebus_core.topics import TopicNames
from sharebus_ops.audit import verify
from sharebus_provision import AUDIT_PARTITIONS, AUDITOR_OUTAGE_SURVIVED_HOURS, TopicSpec, ensure_topics
from tests.integration.conftest import FIXTURE_CATALOGUE
from tests.support.auditor import start_auditor_with_metrics
from tests.support.identities import provision_bus
from tests.support.kafka import eventually, metric
from tests.support.keys import keys_in_env
from tests.support.names import unique
from tests.support.registry import RegistryProcess

SMALL_FACTS = int(os.environ.get("SHAREBUS_TEST_AUDIT_BACKLOG", "20000"))
# 600 facts of 250 decisions: a poll of 500 facts is 125,000 events, past the producer's queue (100,000).
WIDE_FACTS, WIDE_DECISIONS = 600, 250


@pytest.fixture
def audit_bus(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess
) -> tuple[TopicNames, dict[Service, KafkaAccess]]:
    """A namespace with its principals and ACLs, and no router (facts are planted)."""
    namespace = unique("t")
    services = provision_bus(kafka_admin, load_catalogue(FIXTURE_CATALOGUE), namespace, shared_registry.namespace)
    return TopicNames(namespace), services


def fact(seq: int, decisions: int) -> bytes:
    record: dict[str, Any] = {
        "time": time.time(),
        "provider": "AMR",
        "data_class": "301001001/000001",
        "mode": "realtime",
        "key": f"E{seq}",
        "trace_id": f"trace-{seq}",
        "record_id": f"r-{seq}",
        "source": {"topic": "planted", "partition": 0, "offset": seq},
        "decisions": [
            {"consumer": f"c{i}", "grant_id": None, "decision": "deliver", "reason": None, "payload_sha256": "0" * 64}
            for i in range(decisions)
        ],
    }
    return json.dumps({"records": [record]}).encode()


def events_chained(metrics_url: str) -> float:
    """The auditor's chained-event count, or -1 when it does not answer (it died)."""
    try:
        return metric(metrics_url, "sharebus_audit_events_total")
    except httpx.HTTPError:
        return -1


def plant_facts(admin: KafkaAccess, topic: str, count: int, decisions: int, first_seq: int = 0) -> int:
    """Plants ``count`` facts round-robin over the partitions; returns the audit events they make."""
    producer = admin.producer({"enable.idempotence": True, "linger.ms": 20})
    for seq in range(first_seq, first_seq + count):
        while True:
            try:
                producer.produce(topic, key=f"E{seq}".encode(), value=fact(seq, decisions), partition=seq % 3)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    return count * decisions


@pytest.mark.timeout(600)  # about 200,000 events planted, chained and verified twice
def test_an_outage_backlog_is_chained_in_bounded_transactions_and_verifies(
    audit_bus: tuple[TopicNames, dict[Service, KafkaAccess]],
    kafka_admin: KafkaAccess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topics, services = audit_bus
    # A chain exists before the outage: the catch-up must continue it, not start another.
    first, first_url = start_auditor_with_metrics(services["auditor"], topics.namespace, tmp_path / "first")
    try:
        expected = plant_facts(kafka_admin, topics.audit_facts, 30, 2)  # the auditor made the topics
        chained = eventually(lambda: events_chained(first_url), lambda n: n >= expected, 60)
        assert chained == expected
    finally:
        first.stop()

    # The outage: a release's worth of wide facts, and many small ones.
    expected += plant_facts(kafka_admin, topics.audit_facts, WIDE_FACTS, WIDE_DECISIONS, first_seq=1000)
    expected += plant_facts(kafka_admin, topics.audit_facts, SMALL_FACTS, 2, first_seq=10_000)

    started = time.monotonic()
    second, second_url = start_auditor_with_metrics(services["auditor"], topics.namespace, tmp_path / "second")
    try:
        caught_up = expected - 60
        chained = eventually(
            lambda: events_chained(second_url),
            lambda n: n >= caught_up or not second.alive(),
            timeout_s=600,
        )
        elapsed = time.monotonic() - started
        assert chained == caught_up, f"{chained} of {caught_up} events chained; log: {second.tail()}"
        transactions = metric(second_url, "sharebus_audit_transactions_total")
        # Bounded: at least one transaction per 20,000 events (the default), however big the backlog.
        assert transactions >= caught_up // 20_000
    finally:
        second.stop()
    print(f"caught up {caught_up} events in {elapsed:.1f} s, {transactions:.0f} transactions")

    result = verify(kafka_admin, topics.audit)
    assert result.broken is None
    assert result.events == expected
    for name, value in (*kafka_admin.env().items(), ("SHAREBUS_NAMESPACE", topics.namespace)):
        monkeypatch.setenv(name, value)
    keys_in_env(monkeypatch)
    assert cli(["audit", "verify"]) == 0
    assert f"audit chain intact: {expected} events" in capsys.readouterr().out


class _Counting:
    """A consumer that counts the records it hands out."""

    def __init__(self, consumer: Consumer, counter: list[int]) -> None:
        self._consumer, self._counter = consumer, counter

    def poll(self, timeout: float = -1) -> Message | None:
        msg = self._consumer.poll(timeout)
        if msg is not None and msg.error() is None:
            self._counter.append(1)
        return msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def test_chain_heads_are_read_from_the_end_of_the_trail(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = unique("t.audit-heads")
    ensure_topics(kafka_admin, [TopicSpec(topic, AUDIT_PARTITIONS)])
    producer = kafka_admin.producer({"enable.idempotence": True, "linger.ms": 20})
    per_partition = 10_000
    for i in range(per_partition):
        for partition in (0, 1):  # partition 2 stays empty
            producer.produce(topic, value=json.dumps({"hash": f"h{partition}-{i}"}).encode(), partition=partition)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    # An aborted transaction at partition 0's end: its records are no head (read_committed).
    aborted = kafka_admin.producer({"transactional.id": unique("aborter")})
    aborted.init_transactions(30)
    aborted.begin_transaction()
    for i in range(100):
        aborted.produce(topic, value=json.dumps({"hash": f"aborted-{i}"}).encode(), partition=0)
    aborted.flush(30)
    aborted.abort_transaction(30)

    read: list[int] = []
    real_consumer = KafkaAccess.consumer
    monkeypatch.setattr(
        KafkaAccess,
        "consumer",
        lambda self, config=None: _Counting(real_consumer(self, config), read),
    )
    heads = chain_heads(kafka_admin, topic)

    assert {p: (h.offset, h.hash) for p, h in heads.items()} == {
        0: (per_partition - 1, f"h0-{per_partition - 1}"),
        1: (per_partition - 1, f"h1-{per_partition - 1}"),
    }
    assert len(read) < 1_000, f"{len(read)} records read to find two chain heads"


def test_the_facts_topic_keeps_facts_longer_than_the_promised_outage(
    audit_bus: tuple[TopicNames, dict[Service, KafkaAccess]], kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    topics, services = audit_bus
    # The auditor makes the audit topics when they are missing (so do the router and the gateway,
    # with the same specs from ``sharebus_provision.audit_topics``).
    start_auditor_with_metrics(services["auditor"], topics.namespace, tmp_path)[0].stop()
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.audit_facts)
    admin = kafka_admin.admin()  # kept: a collected client ends its futures with _DESTROY
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    retention_ms = int(configs["retention.ms"].value)
    assert retention_ms > AUDITOR_OUTAGE_SURVIVED_HOURS * 3_600_000
