"""Signed control events (grants, API keys): written signed by the control plane, read only once verified.

Every reader of a control topic opens each record with ``open_event``, and every reader treats an
event it cannot verify the same way: **ignored**. It changes nothing: it grants nothing, and it
revokes or deletes nothing either. That is the fail-closed choice for a forger: whatever an
unverifiable event says ("approved", "revoked", a tombstone), the reader's state is what the
verified events made it, so a principal that can write the topic but not sign cannot create
access, and cannot take away a valid revocation either (a forged "approved" after a real "revoked"
is as void as a forged "revoked"). A tombstone has no value to sign, so it is never applied.

Long-running readers (the router, the gateway) also count each rejection in
``sharebus_control_events_rejected_total{topic,reason}``, log it and audit it as a denial
(``ControlRejections``); one-shot readers (the CLI) log it once per process.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Message
from prometheus_client import CollectorRegistry, Counter

from sharebus_core.audit_fact import AuditFact, FactDecision
from sharebus_core.compacted_log import append
from sharebus_core.kafka import KafkaAccess
from sharebus_core.produce import Written
from sharebus_core.signing import Rejected, RejectReason, Signer, Verified, Verifier, unverified_payload
from sharebus_core.topic_reader import read_topic

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ControlEventRejected:
    """A control event a reader refused, where it was, why, and what it claimed (untrusted)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    reason: RejectReason
    detail: str
    signing_key_id: str | None
    claimed_subject: str | None
    value_sha256: str | None

    def __str__(self) -> str:
        claimed = f", claiming {self.claimed_subject}" if self.claimed_subject else ""
        return (
            f"ignored a control event on {self.topic}[{self.partition}]@{self.offset} (key {self.key}{claimed}): "
            f"{self.reason.value}: {self.detail}"
        )


def appended_at_ms(msg: Message) -> int | None:
    """The broker's append time of a record, when the topic stamps records so (never the producer's)."""
    kind, stamp = msg.timestamp()
    return stamp if kind == TIMESTAMP_LOG_APPEND_TIME else None


def _claimed(value: bytes | None, subject_field: str) -> str | None:
    payload = unverified_payload(value)
    try:
        doc = json.loads(payload) if payload is not None else None
    except (ValueError, UnicodeDecodeError):
        return None
    subject = doc.get(subject_field) if isinstance(doc, dict) else None
    return subject[:100] if isinstance(subject, str) else None


def closed_by(rejected: ControlEventRejected) -> str | None:
    """The record key a refused event closes: the control plane signed it (the signature covers the
    key), but nobody can read it, so what it said of that grant or key is unknown; readers fail closed."""
    if rejected.reason is RejectReason.INVALID_PAYLOAD and rejected.key is not None:
        return rejected.key
    return None


def rejected_event(msg: Message, outcome: Rejected, subject_field: str) -> ControlEventRejected:
    """A record a reader refuses, described for logs and the audit (also for checks made after ``open_event``)."""
    key, value = msg.key(), msg.value()
    return ControlEventRejected(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        key=key.decode("utf-8", "replace") if key is not None else None,
        reason=outcome.reason,
        detail=outcome.detail,
        signing_key_id=outcome.key_id,
        claimed_subject=_claimed(value, subject_field),
        value_sha256=hashlib.sha256(value).hexdigest() if value is not None else None,
    )


def open_event(
    verifier: Verifier, msg: Message, decode: Callable[[bytes, str | None], T], subject_field: str
) -> T | ControlEventRejected:
    """The entry a record carries, if the control plane signed it for this topic and key; else why not.

    ``decode(payload, record_key)`` raises ``ValueError`` (pydantic's ``ValidationError`` is one) for
    a payload that is signed but not an entry of this topic, or not the entry of this key.
    ``subject_field`` names the payload field reported as the claimed subject of a rejected event.
    """
    key = msg.key()
    outcome = verifier.verify(msg.value(), topic=msg.topic() or "", key=key, appended_at_ms=appended_at_ms(msg))
    if isinstance(outcome, Verified):
        try:
            return decode(outcome.payload, key.decode("utf-8", "replace") if key is not None else None)
        except ValueError as exc:
            invalid = Rejected(RejectReason.INVALID_PAYLOAD, f"signed, but not a valid entry: {exc}", outcome.key_id)
            return rejected_event(msg, invalid, subject_field)
    return rejected_event(msg, outcome, subject_field)


def append_signed(access: KafkaAccess, topic: str, key: str, payload: bytes, signer: Signer) -> Written:
    """Appends one signed entry and returns where, once Kafka has acknowledged it (``CompactedLogError`` if not)."""
    return append(access, topic, key, signer.sign(payload, topic=topic, key=key))


_logged: set[tuple[str, int, int]] = set()


def log_once(rejected: ControlEventRejected) -> None:
    """For readers that read the whole log on every call: one warning per event and process."""
    where = (rejected.topic, rejected.partition, rejected.offset)
    if where not in _logged:
        _logged.add(where)
        log.warning("%s", rejected)


def read_verified(
    access: KafkaAccess,
    topic: str,
    open_: Callable[[Message], T | ControlEventRejected],
    on_rejected: Callable[[ControlEventRejected], None] = log_once,
    timeout_s: float = 30.0,
) -> list[T]:
    """Every verified entry of a control topic, in log order; rejected ones go to ``on_rejected``.

    Raises ``TopicReadError`` when the topic cannot be read.
    """
    entries: list[T] = []
    for msg in read_topic(access, topic, timeout_s):
        opened = open_(msg)
        if isinstance(opened, ControlEventRejected):
            on_rejected(opened)
        else:
            entries.append(opened)
    return entries


def denial_fact(rejected: ControlEventRejected, reader: str) -> AuditFact:
    """A rejected control event as an audit fact: a denial of what it claimed, by the reader that refused it."""
    decision = FactDecision(
        consumer=rejected.claimed_subject, decision="deny", reason=f"control_event_{rejected.reason.value}"
    )
    return AuditFact(
        mode="control",
        source={"topic": rejected.topic, "partition": rejected.partition, "offset": rejected.offset},
        decisions=(decision,),
        partition_key=f"control:{rejected.topic}",
        key=rejected.key,
        extra={
            "reader": reader,
            "detail": rejected.detail,
            "signing_key_id": rejected.signing_key_id,
            "value_sha256": rejected.value_sha256,
        },
    )


class ControlRejections:
    """What a long-running reader does with a control event it refused: count it, log it, audit it.

    ``audit`` sends one fact to the facts topic; it must be callable from a follower's thread.
    """

    def __init__(self, reader: str, registry: CollectorRegistry, audit: Callable[[AuditFact], None]) -> None:
        self.reader = reader
        self.audit = audit
        self.rejected = Counter(
            "sharebus_control_events_rejected",
            "Grant and API-key events ignored because they could not be verified, by topic and reason",
            ["topic", "reason"],
            registry=registry,
        )

    def __call__(self, rejected: ControlEventRejected) -> None:
        self.rejected.labels(rejected.topic, rejected.reason.value).inc()
        log.warning("%s", rejected)
        try:
            self.audit(denial_fact(rejected, self.reader))
        except Exception:
            # The event stays ignored whatever happens here; a missing audit fact is logged loudly.
            log.exception("could not audit the rejected control event at %s", rejected.offset)
