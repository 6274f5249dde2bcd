"""Every dispute step as an audit fact (mode ``dispute``), chained by the auditor like any other.

Decision ``dispute`` (``forbidden`` for a refused one): never ``deliver`` or ``deny``, so the counts of
deliveries and denials made from the trail are unaffected, and the delivery index ignores them.
"""

from __future__ import annotations

from sharebus_core.audit_fact import AuditFact, DecisionKind, FactDecision
from sharebus_rules.disputes import DisputeEvent


def dispute_fact(event: DisputeEvent) -> AuditFact:
    decision: DecisionKind = "forbidden" if event.type == "refused" else "dispute"
    return AuditFact(
        mode="dispute",
        source={"dispute": {"id": event.dispute_id, "event": event.type}},
        decisions=(FactDecision(consumer=event.consumer, decision=decision, reason=event.type),),
        partition_key=f"dispute:{event.dispute_id}",
        time=event.time.timestamp(),
        provider=event.provider,
        data_class=event.data_class,
        record_id=event.record_id,
        extra={
            "dispute_id": event.dispute_id,
            "dispute_event": event.type,
            "by": event.by,
            "correction_record_id": event.correction_record_id,
        },
    )
