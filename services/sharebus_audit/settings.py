from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from sharebus_core.settings import BusSettings, shared_config
from sharebus_provision import AUDITOR_OUTAGE_SURVIVED_HOURS, FACTS_RETENTION_HOURS


class AuditorSettings(BusSettings):
    """Env prefix ``SHAREBUS_AUDITOR_``."""

    model_config = shared_config("SHAREBUS_AUDITOR_")

    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=6067, ge=0, le=65535)
    batch_size: int = Field(default=500, ge=1, description="facts consumed per poll at most")
    # A transaction ends at the first fact boundary past this many events: far below the producer's
    # queue (100,000 messages) and small enough to commit well within the transaction timeout (60 s).
    max_transaction_events: int = Field(default=20_000, ge=1, description="audit events per transaction (soft)")
    # A transaction's events are sealed per partition into blocks (one Kafka record, one chain link over
    # a Merkle tree) of at most this many events and about this many bytes (the broker's limit is 1 MB).
    block_max_events: int = Field(default=1000, ge=1)
    block_max_bytes: int = Field(default=512 * 1024, ge=4096, le=900_000)
    # The audit trail is evidence: kept forever unless an operator decides otherwise. Applied only to the
    # topics the auditor creates (the router and gateway create them too, kept forever), and signed into
    # every anchor, which is what `audit verify` judges a removed head by (docs/audit.md, "Retention").
    retention_hours: int = Field(
        default=-1, ge=-1, description="retention of the audit trail and its anchors, in hours (-1 or 0: forever)"
    )
    # The facts wait here while the auditor is down: never shorter than the outage the README promises.
    facts_retention_hours: int = Field(default=FACTS_RETENTION_HOURS, gt=AUDITOR_OUTAGE_SURVIVED_HOURS)
    # The chain heads are signed onto <ns>.audit.anchors this often (when they moved), and at stop.
    anchor_interval_s: float = Field(default=60.0, gt=0)
    audit_signing_key_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("audit_signing_key_file", "SHAREBUS_AUDIT_SIGNING_KEY_FILE"),
        description="the auditor's own Ed25519 private key (PEM), which signs the anchors; required",
    )
