"""One typed record for an audit fact: what a bus process tells the auditor about one decision.

Facts travel on ``<ns>.audit.facts`` as ``{"records": [fact, ...]}``; the auditor turns every decision
of every fact into one hash-chained audit event (``sharebus_audit.auditor.audit_events``), copying
the fact's fields into it. The router builds its per-record facts in the same shape
(``sharebus_router.audit_facts.record_fact``, kept as plain dicts on its hot path).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# A publisher chooses a record's key and its trace and record ids; the router audits one longer than this
# (in UTF-8 bytes) by its digest (``audited_text``), so that no one value can take a fact past its bound.
MAX_AUDITED_BYTES = 512


def audited_text(raw: bytes | str | None) -> str | None:
    """A publisher-chosen value as the audit trail holds it: itself, or ``sha256:<digest>`` of it when it
    is longer than ``MAX_AUDITED_BYTES`` (the router's facts hold them so: ``sharebus_router.audit_facts``).
    Whoever looks a record up in the trail by such a value must look for this."""
    if raw is None:
        return None
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if len(data) > MAX_AUDITED_BYTES:
        return f"sha256:{hashlib.sha256(data).hexdigest()}"
    return data.decode("utf-8", "replace")


# ``dispute``: a step of a dispute (mode ``dispute``); never a delivery or a denial, so counts of those
# (``sharebus audit who``, the report) are unaffected. A refused dispute is ``forbidden``.
DecisionKind = Literal["deliver", "deny", "forbidden", "dispute"]


@dataclass(frozen=True, slots=True)
class FactDecision:
    consumer: str | None
    decision: DecisionKind
    reason: str | None = None
    grant_id: str | None = None
    payload_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "grant_id": self.grant_id,
            "decision": self.decision,
            "reason": self.reason,
            "payload_sha256": self.payload_sha256,
        }


@dataclass(frozen=True, slots=True)
class AuditFact:
    """``mode`` says who decided (the router's ``realtime``/``periodic``, ``gateway``, ``control``);
    ``source`` where the decided thing came from; ``extra`` holds a mode's own top-level fields."""

    mode: str
    source: Mapping[str, Any]
    decisions: tuple[FactDecision, ...]
    partition_key: str
    time: float = field(default_factory=time.time)
    provider: str | None = None
    data_class: str | None = None
    key: str | None = None
    trace_id: str | None = None
    record_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "provider": self.provider,
            "data_class": self.data_class,
            "mode": self.mode,
            "key": self.key,
            "trace_id": self.trace_id,
            "record_id": self.record_id,
            "source": dict(self.source),
            **self.extra,
            "decisions": [d.to_dict() for d in self.decisions],
        }

    def encode(self) -> tuple[bytes, bytes]:
        """The (key, value) of the facts-topic message carrying this one fact."""
        body = json.dumps({"records": [self.to_dict()]}, ensure_ascii=False, separators=(",", ":"))
        return self.partition_key.encode(), body.encode()
