from __future__ import annotations

from pathlib import Path

from pydantic import Field

from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import REPO_ROOT, BusSettings, shared_config


class RouterSettings(BusSettings):
    """Env prefix ``SHAREBUS_ROUTER_`` (plus the shared ``SHAREBUS_BOOTSTRAP`` etc.)."""

    model_config = shared_config("SHAREBUS_ROUTER_")

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535, description="/metrics, /healthz and /readyz")
    log_level: str = "info"
    data_dir: Path = REPO_ROOT / "var" / "router"
    # Offsets are committed at most this often, always after the producer has flushed.
    commit_interval_s: float = Field(default=1.0, gt=0)
    producer_linger_ms: int = Field(default=5, ge=0)
    # The data path's producers, each sending its own share of the topics (data_path.DataProducer): one
    # librdkafka producer serves its partitions one ProduceRequest at a time.
    data_producers: int = Field(default=8, ge=1, le=64)
    stream_buffer_maxsize: int = Field(default=4096, ge=1)
    delivery_partitions: int = Field(default=3, ge=1)
    # Copies of the topics Faust creates itself (its leader topic, the periods table's changelog):
    # min(3, brokers), as the bus's own topics get (sharebus_provision.replication). None: counted from
    # the cluster at start, so a router started by hand on three brokers never makes a one-copy topic
    # that min.insync.replicas=2 would refuse every write to.
    topic_replication_factor: int | None = Field(default=None, ge=1, le=3)
    delivery_retention_hours: int = Field(default=7 * 24, ge=1)
    dead_letter_retention_hours: int = Field(default=30 * 24, ge=1)
    # A crashed worker holds its partitions until its session expires; keep that short so a
    # replacement (or a restart) takes over in seconds rather than a minute.
    session_timeout_s: float = Field(default=10.0, gt=0)
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    # A backfill request still unanswered this long after it was made is served by the owner's sweep
    # (backfill_agent.py): Faust can leave a partition it assigned after a rebalance unfetched.
    backfill_stall_s: float = Field(default=30.0, gt=0)
    # The data path takes at most this many records per batch (data_path.py); each batch's audit facts
    # are sent right after its deliveries.
    batch_max_records: int = Field(default=2000, ge=1, le=100_000)
    # No facts message is larger than this (the broker refuses one over 1 MB, which would end the
    # router): a batch of facts, a released window's or a backfill chunk's, is split to fit.
    audit_message_max_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=1_000_000)
    # For the overdue-applications gauge; the same default as the grant workflow's.
    answer_deadline_working_days: int = Field(default=10, ge=1)
    registry_timeout_s: float = Field(default=5.0, gt=0)
    # At start, a class whose routes cannot be built (the registry still starting) holds routing back
    # for at most this long; after it the class is closed (every consumer denied) and the router routes.
    route_build_grace_s: float = Field(default=30.0, ge=0)
    # The largest message the router sends (its producer's max request size). A record whose delivery,
    # held copy or dead letter would be larger is dead-lettered ("too_large") or trimmed, never sent
    # to fail: one failed send would end the route agent. At most the broker's message.max.bytes.
    max_message_bytes: int = Field(default=1_000_000, ge=16_384)
    # Schema ids the registry does not know, and ids registered for another class than the record's,
    # are remembered this long (so a flood of bad records costs no registry call each), and at most
    # this many of each (so random ids cannot grow the router's memory).
    unknown_schema_ttl_s: float = Field(default=30.0, gt=0)
    unknown_schema_cache_size: int = Field(default=10_000, ge=1)
    # Periodic classes: records wait on the held topic until their window is released; it must keep
    # them for longer than the longest window (monthly).
    held_partitions: int = Field(default=8, ge=1)
    held_retention_hours: int = Field(default=40 * 24, ge=1)
    # Freshness: a periodic class is overdue when older than its period plus this grace; a real-time
    # class when silent for longer than realtime_max_silence_s.
    freshness_grace_s: float = Field(default=3600.0, ge=0)
    realtime_max_silence_s: float = Field(default=24 * 3600.0, gt=0)
    # With several workers one exports freshness (docs/router-workers.md): it re-reads the newest
    # record of every source topic this often, as the others route records it does not see.
    freshness_refresh_s: float = Field(default=30.0, gt=0)
    # Quality (docs/quality.md): a class counts as delivered when published within this window (or its
    # own period plus the grace, when longer); a reference rule's key view holds at most this many keys
    # of the referenced class (beyond it the rule fails closed).
    quality_delivery_window_s: float = Field(default=24 * 3600.0, gt=0)
    reference_keys_max: int = Field(default=5_000_000, ge=1)
    # Open data (docs/open-data.md): records of open and conditionally open classes also go to the public
    # delivery topic, without their sensitive fields, for the gateway's /open/v1. Off unless the operator
    # opens it (`sharebus run` does): publishing to the public is a decision, not a side effect.
    public_delivery: bool = False
    # Tests and release drills: a file holding a number of seconds added to the router's clock
    # (re-read every second). Unset in production.
    clock_skew_file: Path | None = None

    @property
    def kafka(self) -> KafkaAccess:
        """The router's identity on the listener that does not force re-authentication (KafkaAccess.streaming).

        Every client of the router uses it: Faust's, the data path's, the followers' and the start's
        provisioning. The router is the bus's own service, not a department whose revocation must cut
        its open connections within seconds (docs/security.md).
        """
        return super().kafka.streaming()
