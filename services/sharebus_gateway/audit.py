"""Refused requests (and, from the followers, refused control events) as audit facts.

A refusal is written to ``<ns>.audit.facts`` in the router's fact shape (one fact, one decision), so
the existing auditor chains it into the tamper-evident audit trail and ``sharebus audit verify``
covers it: no second trail to verify, and no change to the auditor. Its decision is ``forbidden``
(never ``deliver``, so ``sharebus audit who`` is unaffected) and ``mode`` is ``gateway``.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message

from sharebus_core.audit_fact import AuditFact, FactDecision
from sharebus_core.kafka import KafkaAccess

log = logging.getLogger(__name__)


def forbidden_fact(
    *,
    action: str,
    system: str,
    department: str,
    key_id: str,
    method: str,
    path: str,
    reason: str,
    data_class: str | None = None,
    provider: str | None = None,
    grant_id: str | None = None,
) -> AuditFact:
    return AuditFact(
        mode="gateway",
        source={"gateway": {"method": method, "path": path, "key_id": key_id}},
        decisions=(FactDecision(consumer=system, decision="forbidden", reason=reason, grant_id=grant_id),),
        partition_key=f"gateway:{system}",
        provider=provider,
        data_class=data_class,
        extra={"action": action, "caller_department": department},
    )


class AuditWriter:
    def __init__(self, access: KafkaAccess, topic: str) -> None:
        self.topic = topic
        self._producer = access.producer({"acks": "all", "enable.idempotence": True})

    def write(self, fact: AuditFact, timeout_s: float = 10.0) -> None:
        """Sends one fact and waits for Kafka: a 403 is only answered once its audit is written."""
        key, body = fact.encode()
        errors: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err.str())

        self._producer.produce(self.topic, key=key, value=body, on_delivery=on_delivery)
        if self._producer.flush(timeout_s) or errors:
            # The refusal still stands; the missing audit is logged loudly rather than turned into a 5xx.
            log.error("could not write a gateway audit fact to %s: %s", self.topic, errors or "not acknowledged")

    def close(self) -> None:
        self._producer.flush(10)
