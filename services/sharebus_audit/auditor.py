"""Chains the router's decision facts into the audit trail, exactly once.

A confluent-kafka transactional loop, not a Faust agent: the chain must never fork, so audit blocks
and the facts' consumed offsets commit in one Kafka transaction. The events of a transaction's facts
are sealed per partition into blocks (``sharebus_core.audit_trail``: one chain link per block, over a
Merkle tree of its events), so a batch of facts costs a few records, not one record per decision.
A transaction ends at the first fact boundary past ``max_transaction_events`` events, so a backlog (a
release's or a backfill's facts, or facts piled up during an outage) never outgrows the producer's
queue or the transaction timeout.
Facts partition p become audit partition p; the head of each chain is read back from the end of the
audit log itself (committed records only, ``sharebus_core.topic_reader.last_records``) whenever a
partition is assigned, so memory is only a cache of the log and reading it back costs a few records,
not the whole trail.

The per-event path (a facts message to its events' block bodies) is ``sharebus_audit.facts``; it and
the Merkle root were made about twice as cheap per event without changing a byte of the trail (docs/audit.md).

Every ``anchor_interval_s`` (when a head moved) and at stop, the committed heads (partition, offset,
hash) are signed with the auditor's own key onto ``<ns>.audit.anchors`` (``sharebus_audit.anchors``).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Counter, Gauge

from sharebus_audit.anchors import Anchor, ChainHead, sign_anchor
from sharebus_audit.facts import UNREADABLE, fact_bodies
from sharebus_audit.facts import audit_events as audit_events
from sharebus_audit.settings import AuditorSettings
from sharebus_core.audit_trail import GENESIS, encode_block, event_body
from sharebus_core.errors import SharebusError
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Signer, SigningKeyError
from sharebus_core.topic_reader import last_records
from sharebus_core.topics import TopicNames

log = logging.getLogger(__name__)

# Between attempts to read the heads and offsets back while Kafka cannot answer (a broker just died):
# the first wait, doubled after each failed attempt up to the last, and the first again once in step.
# A broker that is down for minutes then costs a retry (and a warning) every 30 s, not every second.
RESYNC_BACKOFF_S = 1.0
RESYNC_BACKOFF_MAX_S = 30.0

EVENTS = Counter("sharebus_audit_events", "Audit events chained and committed", ["decision"])
BLOCKS = Counter("sharebus_audit_blocks", "Audit blocks (chain links over a Merkle tree of events) committed")
MALFORMED = Counter("sharebus_audit_malformed_facts", "Decision facts that could not be read (skipped, logged)")
ANCHORS = Counter("sharebus_audit_anchors", "Signed chain-head anchors committed to the anchors topic")
TRANSACTIONS = Counter("sharebus_audit_transactions", "Audit transactions committed (each bounded in events)")
RESYNC_FAILURES = Counter(
    "sharebus_audit_resync_failures", "Times the auditor could not read its heads or offsets back from Kafka (retried)"
)
HEAD_RECOVERY = Gauge("sharebus_audit_head_recovery_seconds", "How long the last chain-head recovery took")


def chain_heads(access: KafkaAccess, topic: str) -> dict[int, ChainHead]:
    """Each partition's chain head (its last committed event's offset and hash), read from the
    partition's end: the trail is kept forever, and only its last event matters here."""
    heads: dict[int, ChainHead] = {}
    for partition, msg in last_records(access, topic, isolation="read_committed").items():
        heads[partition] = ChainHead(
            partition, msg.offset() or 0, json.loads(msg.value() or b"{}").get("hash", GENESIS)
        )
    return heads


def fact_offsets(topic: str, facts: list[Message]) -> list[TopicPartition]:
    """The offsets to commit once ``facts`` are chained: per partition, one past its last fact."""
    ends: dict[int, int] = {}
    for msg in facts:
        partition = msg.partition() or 0
        ends[partition] = max(ends.get(partition, 0), (msg.offset() or 0) + 1)
    return [TopicPartition(topic, partition, end) for partition, end in sorted(ends.items())]


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


class _Pending:
    """A transaction's events per audit partition, as block bodies (``event_body``), cut into blocks of at
    most ``max_events`` events and ``max_bytes`` of events (a block is one Kafka record: the broker
    refuses one over 1 MB)."""

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._blocks: dict[int, list[tuple[bytes | None, list[bytes], int]]] = {}

    def add(self, partition: int, key: bytes | None, event: dict[str, Any]) -> None:
        self.add_bodies(partition, key, [event_body(event)])

    def add_bodies(self, partition: int, key: bytes | None, bodies: list[bytes]) -> None:
        """Appends events, as block bodies, to the partition's last block, starting new ones as it fills."""
        if not bodies:
            return
        blocks = self._blocks.setdefault(partition, [])
        if blocks:
            block_key, block, used = blocks[-1]
        else:
            block_key, block, used = key, [], 0
            blocks.append((block_key, block, used))
        for body in bodies:
            if block and (len(block) >= self.max_events or used + len(body) > self.max_bytes):
                blocks[-1] = (block_key, block, used)
                block_key, block, used = key, [], 0
                blocks.append((block_key, block, used))
            block.append(body)
            used += len(body)
        blocks[-1] = (block_key, block, used)

    def blocks(self) -> list[tuple[int, bytes | None, list[bytes]]]:
        """(partition, key, bodies) per block, in partition order and, within one, in fact order."""
        return [(p, key, bodies) for p in sorted(self._blocks) for key, bodies, _ in self._blocks[p]]


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


class _Step(enum.Enum):
    """How far the auditor's cache (chain heads, consumer positions, producer) agrees with the log."""

    IN_STEP = "in step"
    # Positions and heads come back from the log (after an assignment whose heads could not be read,
    # or an aborted transaction): whatever was consumed meanwhile is read again.
    REWIND = "rewind"
    # As REWIND, with a new transactional producer first: one that could not abort is fenced by it.
    NEW_PRODUCER = "new producer"


_STEPS = list(_Step)


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
        self.step = _Step.NEW_PRODUCER
        self.consumer = settings.kafka.consumer(
            {
                "group.id": self.topics.auditor_app_id,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.producer = self._new_producer()

    def _new_producer(self) -> Producer:
        return self.settings.kafka.producer(
            {
                # One auditor per namespace: a second one with the same id fences the first.
                "transactional.id": self.topics.auditor_app_id,
                "enable.idempotence": True,
            }
        )

    def _fall_back(self, step: _Step) -> None:
        if _STEPS.index(step) > _STEPS.index(self.step):
            self.step = step

    def _recover_heads(self) -> None:
        started = time.monotonic()
        self.committed = chain_heads(self.settings.kafka, self.topics.audit)
        HEAD_RECOVERY.set(time.monotonic() - started)
        self.heads = {partition: head.hash for partition, head in self.committed.items()}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Never raises: an exception here would escape consume() and end the auditor. Heads that
        # cannot be read now (a broker just died) are read by the loop before anything is chained.
        try:
            self._recover_heads()
        except (KafkaException, SharebusError) as exc:
            self._fall_back(_Step.REWIND)
            assigned = [p.partition for p in partitions]
            log.warning("auditor assigned %s; chain heads unreadable for now: %s", assigned, exc)
            return
        log.info(
            "auditor assigned %s; chain heads recovered from %s", [p.partition for p in partitions], self.topics.audit
        )

    def _init_producer(self) -> None:
        """init_transactions aborts whatever an earlier producer with this id left open."""
        try:
            self.producer.init_transactions(30)
        except KafkaException:
            # A producer whose init failed may be unusable (a fatal error): the next attempt gets a new one.
            self.producer = self._new_producer()
            raise

    def _resync(self) -> bool:
        """Brings the cache back in step with the log; False (logged, retried later) if Kafka cannot answer."""
        try:
            if self.step is _Step.NEW_PRODUCER:
                self._init_producer()
                self.step = _Step.REWIND
            # Nothing assigned yet: the heads are read at the assignment.
            assignment = self.consumer.assignment()
            if assignment:
                for tp in self.consumer.committed(assignment, timeout=30):
                    tp.offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                    self.consumer.seek(tp)
                self._recover_heads()
        except (KafkaException, SharebusError) as exc:
            RESYNC_FAILURES.inc()
            log.warning("auditor out of step with the log (%s: %s); retrying", self.step.value, exc)
            return False
        self.step = _Step.IN_STEP
        return True

    def run(self) -> None:
        self.consumer.subscribe([self.topics.audit_facts], on_assign=self._on_assign)
        backoff = RESYNC_BACKOFF_S
        try:
            while not self.stop.is_set():
                if self.step is not _Step.IN_STEP:
                    if not self._resync():
                        self.stop.wait(backoff)
                        backoff = min(backoff * 2, RESYNC_BACKOFF_MAX_S)
                        continue
                    backoff = RESYNC_BACKOFF_S
                batch = self.consumer.consume(self.settings.batch_size, 0.5)
                facts = [m for m in batch if m.error() is None]
                if self.step is not _Step.IN_STEP:
                    continue  # assigned during this consume without readable heads: read again after resync
                if facts:
                    self._chain(facts)
                if time.monotonic() - self.last_anchor >= self.settings.anchor_interval_s:
                    self.anchor()
        finally:
            try:
                if self.step is _Step.IN_STEP:
                    self.anchor()
            except KafkaException:
                log.exception("could not anchor the chain heads at stop")
            finally:
                self.consumer.close()

    def _abort(self) -> None:
        """Aborts the open transaction; a producer that cannot (fatal, or its coordinator gone) is replaced."""
        try:
            self.producer.abort_transaction(30)
        except KafkaException as exc:
            log.warning("could not abort the audit transaction (%s); a new producer fences the old one", exc)
            self.producer = self._new_producer()
            self._fall_back(_Step.NEW_PRODUCER)
            return
        self._fall_back(_Step.REWIND)

    def anchor(self) -> None:
        """Signs the committed chain heads onto the anchors topic, in a transaction of its own (if they moved)."""
        self.last_anchor = time.monotonic()
        heads = tuple(self.committed[p] for p in sorted(self.committed))
        if not heads or heads == self.anchored:
            return
        anchor = Anchor(self.topics.audit, time.time(), heads, self.settings.retention_hours)
        key, value = sign_anchor(self.signer, anchor, self.topics.audit_anchors)
        try:
            self.producer.begin_transaction()
            self.producer.produce(self.topics.audit_anchors, key=key, value=value)
            self.producer.commit_transaction(30)
        except KafkaException:
            # The heads stay unanchored and are tried again next interval; the chain itself is unaffected.
            log.exception("could not commit an anchor; retrying at the next interval")
            self._abort()
            return
        self.anchored = heads
        ANCHORS.inc()

    def _events(self, msg: Message, pending: _Pending, counts: dict[Any, int]) -> int:
        """Adds one facts message's events to ``pending`` (its partition's next block); returns how many."""
        partition = msg.partition() or 0
        try:
            bodies, made = fact_bodies(msg.value() or b"", partition)
        except UNREADABLE:
            MALFORMED.inc()
            log.exception("skipping an unreadable fact at %s[%s]@%s", msg.topic(), partition, msg.offset())
            return 0
        for decision, n in made.items():
            counts[decision] = counts.get(decision, 0) + n
        pending.add_bodies(partition, msg.key(), bodies)
        return len(bodies)

    def _produce(
        self, key: bytes | None, partition: int, value: bytes, on_delivery: Callable[[KafkaError | None, Message], None]
    ) -> None:
        """Produces one block, waiting for room when the producer's queue is full."""
        while True:
            try:
                self.producer.produce(
                    self.topics.audit, key=key, partition=partition, value=value, on_delivery=on_delivery
                )
            except BufferError:
                self.producer.poll(0.1)
            else:
                return

    def _chain(self, facts: list[Message]) -> None:
        """Chains ``facts`` in as many bounded transactions as they need."""
        start = 0
        while start < len(facts):
            end = self._chain_some(facts, start)
            if end is None:
                return  # aborted: the consumer was rewound to the last commit, the rest is read again
            start = end

    def _chain_some(self, facts: list[Message], start: int) -> int | None:
        """One transaction: facts from ``start`` up to the first fact boundary past
        ``max_transaction_events`` events. Returns where the next transaction starts, None if aborted."""
        heads = dict(self.heads)
        counts: dict[Any, int] = {}
        delivered = _Delivered()
        pending = _Pending(self.settings.block_max_events, self.settings.block_max_bytes)
        end, events = start, 0
        while end < len(facts) and events < self.settings.max_transaction_events:
            events += self._events(facts[end], pending, counts)
            end += 1
        blocks = 0
        try:
            self.producer.begin_transaction()
            for partition, key, bodies in pending.blocks():
                link, value = encode_block(bodies, heads.get(partition, GENESIS))
                heads[partition] = link
                self._produce(key, partition, value, delivered.callback(link))
                blocks += 1
            # Every block's offset is known (from its delivery report) before the transaction commits.
            _await_deliveries(self.producer)
            # Produce, then the offsets of exactly the facts chained here, then commit: all of it lands,
            # or none of it does.
            offsets = fact_offsets(self.topics.audit_facts, facts[start:end])
            self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), 30)
            self.producer.commit_transaction(30)
        except KafkaException:
            log.exception("audit transaction failed; aborting and resuming from the last commit")
            self._abort()
            return None
        self.heads = heads
        self.committed.update(delivered.heads)
        TRANSACTIONS.inc()
        BLOCKS.inc(blocks)
        for decision, n in counts.items():
            EVENTS.labels(decision).inc(n)
        return end
