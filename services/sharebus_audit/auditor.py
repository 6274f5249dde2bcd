"""Chains the router's decision facts into the audit trail, exactly once.

A confluent-kafka transactional loop, not a Faust agent: the chain must never fork, so each batch's
audit events and the facts' consumed offsets commit in one Kafka transaction. Facts partition p
become audit partition p; the head of each chain is read back from the audit log itself (committed
records only) whenever a partition is assigned, so memory is only a cache of the log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import Counter

from sharebus_audit.chain import GENESIS, seal
from sharebus_audit.settings import AuditorSettings
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topic_reader import read_topic
from sharebus_core.topics import TopicNames

log = logging.getLogger(__name__)

EVENTS = Counter("sharebus_audit_events", "Audit events chained and committed", ["decision"])
MALFORMED = Counter("sharebus_audit_malformed_facts", "Decision facts that could not be read (skipped, logged)")


def audit_events(batch: dict[str, Any], partition: int) -> list[dict[str, Any]]:
    """One unsealed audit event per decision, for every record fact in a batch from the router."""
    events: list[dict[str, Any]] = []
    for fact in batch["records"]:
        common = {k: v for k, v in fact.items() if k != "decisions"}
        common["time"] = dt.datetime.fromtimestamp(fact["time"], dt.UTC).isoformat(timespec="milliseconds")
        events.extend({**common, **decision, "partition": partition} for decision in fact["decisions"])
    return events


def last_hashes(access: KafkaAccess, topic: str) -> dict[int, str]:
    """Each partition's chain head, from the committed audit log."""
    heads: dict[int, str] = {}
    for msg in read_topic(access, topic, isolation="read_committed"):
        heads[msg.partition() or 0] = json.loads(msg.value() or b"{}").get("hash", GENESIS)
    return heads


class Auditor:
    def __init__(self, settings: AuditorSettings) -> None:
        self.settings = settings
        self.topics = TopicNames(settings.namespace)
        self.heads: dict[int, str] = {}
        self.stop = threading.Event()
        self.consumer = settings.kafka.consumer(
            {
                "group.id": self.topics.auditor_app_id,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.producer = settings.kafka.producer(
            {
                # One auditor per namespace: a second one with the same id fences the first.
                "transactional.id": self.topics.auditor_app_id,
                "enable.idempotence": True,
            }
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.heads = last_hashes(self.settings.kafka, self.topics.audit)
        log.info(
            "auditor assigned %s; chain heads recovered from %s", [p.partition for p in partitions], self.topics.audit
        )

    def run(self) -> None:
        self.producer.init_transactions(30)
        self.consumer.subscribe([self.topics.audit_facts], on_assign=self._on_assign)
        try:
            while not self.stop.is_set():
                batch = self.consumer.consume(self.settings.batch_size, 0.5)
                facts = [m for m in batch if m.error() is None]
                if facts:
                    self._chain(facts)
        finally:
            self.consumer.close()

    def _chain(self, facts: list[Message]) -> None:
        heads = dict(self.heads)
        counts: dict[str, int] = {}
        self.producer.begin_transaction()
        try:
            for msg in facts:
                partition = msg.partition() or 0
                try:
                    fact = json.loads(msg.value() or b"")
                    events = audit_events(fact, partition)
                except (ValueError, KeyError, TypeError):
                    MALFORMED.inc()
                    log.exception("skipping an unreadable fact at %s[%s]@%s", msg.topic(), partition, msg.offset())
                    continue
                for event in events:
                    sealed = seal(event, heads.get(partition, GENESIS))
                    heads[partition] = sealed["hash"]
                    counts[sealed["decision"]] = counts.get(sealed["decision"], 0) + 1
                    self.producer.produce(
                        self.topics.audit,
                        key=msg.key(),
                        partition=partition,
                        value=json.dumps(sealed, ensure_ascii=False).encode(),
                    )
            # Produce, then the consumed offsets, then commit: all of it lands, or none of it does.
            positions = self.consumer.position(self.consumer.assignment())
            self.producer.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(), 30)
            self.producer.commit_transaction(30)
        except KafkaException:
            log.exception("audit transaction failed; aborting and resuming from the last commit")
            self.producer.abort_transaction(30)
            self._rewind()
            return
        self.heads = heads
        for decision, n in counts.items():
            EVENTS.labels(decision).inc(n)

    def _rewind(self) -> None:
        """After an abort: back to the committed offsets, with heads from the committed log."""
        assignment = self.consumer.assignment()
        committed = self.consumer.committed(assignment, timeout=30)
        for tp in committed:
            tp.offset = tp.offset if tp.offset >= 0 else 0
            self.consumer.seek(tp)
        self.heads = last_hashes(self.settings.kafka, self.topics.audit)
