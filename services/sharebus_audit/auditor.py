"""Chains the router's decision facts into the audit trail, exactly once.

A confluent-kafka transactional loop, not a Faust agent: the chain must never fork, so each batch's
audit events and the facts' consumed offsets commit in one Kafka transaction. Facts partition p
become audit partition p; the head of each chain is read back from the audit log itself (committed
records only) whenever a partition is assigned, so memory is only a cache of the log.

Every ``anchor_interval_s`` (when a head moved) and at stop, the committed heads (partition, offset,
hash) are signed with the auditor's own key onto ``<ns>.audit.anchors`` (``sharebus_audit.anchors``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Counter

from sharebus_audit.anchors import Anchor, ChainHead, sign_anchor
from sharebus_audit.chain import GENESIS, seal
from sharebus_audit.settings import AuditorSettings
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Signer, SigningKeyError
from sharebus_core.topic_reader import read_topic
from sharebus_core.topics import TopicNames

log = logging.getLogger(__name__)

EVENTS = Counter("sharebus_audit_events", "Audit events chained and committed", ["decision"])
MALFORMED = Counter("sharebus_audit_malformed_facts", "Decision facts that could not be read (skipped, logged)")
ANCHORS = Counter("sharebus_audit_anchors", "Signed chain-head anchors committed to the anchors topic")


def audit_events(batch: dict[str, Any], partition: int) -> list[dict[str, Any]]:
    """One unsealed audit event per decision, for every record fact in a batch from the router."""
    events: list[dict[str, Any]] = []
    for fact in batch["records"]:
        common = {k: v for k, v in fact.items() if k != "decisions"}
        common["time"] = dt.datetime.fromtimestamp(fact["time"], dt.UTC).isoformat(timespec="milliseconds")
        events.extend({**common, **decision, "partition": partition} for decision in fact["decisions"])
    return events


def chain_heads(access: KafkaAccess, topic: str) -> dict[int, ChainHead]:
    """Each partition's chain head (its last committed event's offset and hash), from the audit log."""
    heads: dict[int, ChainHead] = {}
    for msg in read_topic(access, topic, isolation="read_committed"):
        partition = msg.partition() or 0
        heads[partition] = ChainHead(
            partition, msg.offset() or 0, json.loads(msg.value() or b"{}").get("hash", GENESIS)
        )
    return heads


class _Delivered:
    """Per partition, the last delivered audit event's offset and hash (from delivery reports)."""

    def __init__(self) -> None:
        self.heads: dict[int, ChainHead] = {}

    def callback(self, sealed_hash: str) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            partition, offset = msg.partition() or 0, msg.offset() or 0
            known = self.heads.get(partition)
            if err is None and (known is None or offset > known.offset):
                self.heads[partition] = ChainHead(partition, offset, sealed_hash)

        return on_delivery


def _await_deliveries(producer: Producer) -> None:
    if producer.flush(30):
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "audit events not delivered within 30 s"))


def _signer(settings: AuditorSettings) -> Signer:
    if settings.audit_signing_key_file is None:
        raise SigningKeyError(
            "no audit signing key: set SHAREBUS_AUDIT_SIGNING_KEY_FILE to the auditor's private key "
            "(it signs the chain-head anchors that let `sharebus audit verify` see a rewritten trail)"
        )
    return Signer.from_file(settings.audit_signing_key_file)


class Auditor:
    def __init__(self, settings: AuditorSettings) -> None:
        self.settings = settings
        self.topics = TopicNames(settings.namespace)
        self.signer = _signer(settings)
        self.heads: dict[int, str] = {}
        # Committed heads with their offsets (what an anchor signs), and the last ones anchored.
        self.committed: dict[int, ChainHead] = {}
        self.anchored: tuple[ChainHead, ...] = ()
        self.last_anchor = time.monotonic()
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

    def _recover_heads(self) -> None:
        self.committed = chain_heads(self.settings.kafka, self.topics.audit)
        self.heads = {partition: head.hash for partition, head in self.committed.items()}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._recover_heads()
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
                if time.monotonic() - self.last_anchor >= self.settings.anchor_interval_s:
                    self.anchor()
        finally:
            try:
                self.anchor()
            except KafkaException:
                log.exception("could not anchor the chain heads at stop")
            finally:
                self.consumer.close()

    def anchor(self) -> None:
        """Signs the committed chain heads onto the anchors topic, in a transaction of its own (if they moved)."""
        self.last_anchor = time.monotonic()
        heads = tuple(self.committed[p] for p in sorted(self.committed))
        if not heads or heads == self.anchored:
            return
        key, value = sign_anchor(self.signer, Anchor(self.topics.audit, time.time(), heads), self.topics.audit_anchors)
        try:
            self.producer.begin_transaction()
            self.producer.produce(self.topics.audit_anchors, key=key, value=value)
            self.producer.commit_transaction(30)
        except KafkaException:
            # The heads stay unanchored and are tried again next interval; the chain itself is unaffected.
            log.exception("could not commit an anchor; retrying at the next interval")
            self.producer.abort_transaction(30)
            return
        self.anchored = heads
        ANCHORS.inc()

    def _seal(self, msg: Message, heads: dict[int, str], counts: dict[str, int], delivered: _Delivered) -> None:
        """Chains one fact's events after ``heads`` and produces them (inside the open transaction)."""
        partition = msg.partition() or 0
        try:
            fact = json.loads(msg.value() or b"")
            events = audit_events(fact, partition)
        except (ValueError, KeyError, TypeError):
            MALFORMED.inc()
            log.exception("skipping an unreadable fact at %s[%s]@%s", msg.topic(), partition, msg.offset())
            return
        for event in events:
            sealed = seal(event, heads.get(partition, GENESIS))
            heads[partition] = sealed["hash"]
            counts[sealed["decision"]] = counts.get(sealed["decision"], 0) + 1
            self.producer.produce(
                self.topics.audit,
                key=msg.key(),
                partition=partition,
                value=json.dumps(sealed, ensure_ascii=False).encode(),
                on_delivery=delivered.callback(sealed["hash"]),
            )

    def _chain(self, facts: list[Message]) -> None:
        heads = dict(self.heads)
        counts: dict[str, int] = {}
        delivered = _Delivered()
        self.producer.begin_transaction()
        try:
            for msg in facts:
                self._seal(msg, heads, counts, delivered)
            # Every event's offset is known (from its delivery report) before the transaction commits.
            _await_deliveries(self.producer)
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
        self.committed.update(delivered.heads)
        for decision, n in counts.items():
            EVENTS.labels(decision).inc(n)

    def _rewind(self) -> None:
        """After an abort: back to the committed offsets, with heads from the committed log."""
        assignment = self.consumer.assignment()
        committed = self.consumer.committed(assignment, timeout=30)
        for tp in committed:
            tp.offset = tp.offset if tp.offset >= 0 else 0
            self.consumer.seek(tp)
        self._recover_heads()
