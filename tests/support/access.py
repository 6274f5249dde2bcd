"""Access tests: a namespace provisioned with every topic and ACL, and plain confluent-kafka probes
that report what the broker said (``"ok"`` or the Kafka error's name) for each resource."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from sharebus_access.acls import anchors_topic
from sharebus_access.reconcile import reconcile
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_provision import catalogue_topics, ensure_topics, router_topics
from sharebus_provision.topics import TopicSpec

OK = "ok"
AUTH_ERRORS = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}


def control_topics(topics: TopicNames) -> list[str]:
    """Every topic of the bus's own, which no system may read or write."""
    return [
        topics.grants,
        topics.api_keys,
        topics.handover,
        topics.backfill,
        topics.held,
        topics.audit_facts,
        topics.audit,
        anchors_topic(topics),
        topics.schemas,
        topics.dead_letter,
        f"{topics.router_faust_id}-periods-changelog",
    ]


def provision_namespace(admin: KafkaAccess, catalogue: Catalogue, namespace: str) -> TopicNames:
    """Every topic of the namespace (one partition each) and every ACL the catalogue implies."""
    topics = TopicNames(namespace)
    specs = catalogue_topics(catalogue, topics, 1, 24, 24) + router_topics(topics, 1, 24)
    specs = [TopicSpec(s.name, 1, s.config) for s in specs]
    known = {s.name for s in specs}
    specs += [TopicSpec(name, 1) for name in control_topics(topics) if name not in known]
    ensure_topics(admin, specs)
    reconcile(admin, catalogue, namespace)
    return topics


def connects(access: KafkaAccess, timeout_s: float = 10.0) -> bool:
    """The broker takes the credential (a metadata request needs no ACL, only a login)."""
    try:
        access.admin().list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return True


def login_refusal(access: KafkaAccess, timeout_s: float = 15.0) -> str | None:
    """The authentication error the broker answers a login with, or None when it takes it."""
    errors: list[KafkaError] = []
    producer = access.producer({"error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        producer.poll(0.2)
        refusals = [e for e in errors if e.code() in AUTH_ERRORS]
        if refusals:
            return str(refusals[0].name())
        if not errors and _metadata_ok(producer):
            return None
    return None


def _metadata_ok(producer: Producer) -> bool:
    try:
        producer.list_topics(timeout=1)
    except KafkaException:
        return False
    return True


def write_outcomes(access: KafkaAccess, topics: Iterable[str]) -> dict[str, str]:
    """Produces one record to each topic; per topic, ``ok`` or why the broker refused it."""
    outcomes: dict[str, str] = {}

    def done(error: KafkaError | None, msg: Message) -> None:
        outcomes[msg.topic() or ""] = OK if error is None else str(error.name())

    # No idempotence: a system that may write nothing must still get per-topic answers.
    producer = access.producer({"acks": "all", "enable.idempotence": False, "message.timeout.ms": 20000})
    for topic in topics:
        producer.produce(topic, b"authz-matrix", key=b"k", on_delivery=done)
    assert producer.flush(30) == 0
    return outcomes


def read_outcomes(access: KafkaAccess, group: str, topics: list[str], timeout_s: float = 30.0) -> dict[str, str]:
    """Subscribes ``group`` to ``topics``; per topic, ``ok`` once a record is read *and* its offset
    committed to the group, or the error the broker answered."""
    consumer = access.consumer(
        {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 0}
    )
    consumer.subscribe(topics)
    outcomes: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(outcomes) < len(topics) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error, topic = msg.error(), msg.topic() or ""
            if error is not None:
                outcomes.setdefault(topic, str(error.name()))
                continue
            try:
                consumer.commit(message=msg, asynchronous=False)
                outcomes.setdefault(topic, OK)
            except KafkaException as exc:
                outcomes.setdefault(topic, f"commit {exc.args[0].name()}")
    finally:
        consumer.close()
    return outcomes


def group_outcome(access: KafkaAccess, group: str, topic: str, timeout_s: float = 20.0) -> str:
    """Joins ``group`` on ``topic`` and commits an offset: ``ok``, or the error the broker answered."""
    consumer = access.consumer(
        {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 0}
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.3)
            error = msg.error() if msg is not None else None
            if error is not None:
                return str(error.name())
            if consumer.assignment():
                try:
                    consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
                except KafkaException as exc:
                    return str(exc.args[0].name())
                return OK
        return "timed out"
    finally:
        consumer.close()


def transaction_outcome(access: KafkaAccess, transactional_id: str) -> str:
    producer = access.producer({"transactional.id": transactional_id, "log_level": 0})
    try:
        producer.init_transactions(15)
    except KafkaException as exc:
        return str(exc.args[0].name())
    return OK
