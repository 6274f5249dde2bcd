"""Creates the topics the catalogue implies; existing topics are left as they are."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import PUBLIC_CONSUMER, TopicNames
from sharebus_provision.errors import ProvisionError

log = logging.getLogger(__name__)
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


# Facts partition p becomes audit partition p, so both topics always have this many partitions.
AUDIT_PARTITIONS = 3


# The longest auditor outage the bus promises to survive without losing audit (docs/reference.md, "Audit").
AUDITOR_OUTAGE_SURVIVED_HOURS = 30 * 24
# Facts wait in their topic while the auditor is down: they are kept past the promised outage, with
# a margin for the catch-up itself (the broker's default, 7 days, would lose a longer outage's facts).
FACTS_RETENTION_HOURS = AUDITOR_OUTAGE_SURVIVED_HOURS + 5 * 24


def audit_topics(
    topics: TopicNames, retention_hours: int = -1, facts_retention_hours: int = FACTS_RETENTION_HOURS
) -> list[TopicSpec]:
    """The router's decision facts (kept ``facts_retention_hours``), the chained audit trail and its
    signed anchors (the last two kept forever by default: they are evidence)."""
    retention = str(retention_hours * _HOUR_MS) if retention_hours > 0 else "-1"
    return [
        TopicSpec(topics.audit_facts, AUDIT_PARTITIONS, {"retention.ms": str(facts_retention_hours * _HOUR_MS)}),
        TopicSpec(topics.audit, AUDIT_PARTITIONS, {"retention.ms": retention}),
        TopicSpec(topics.audit_anchors, 1, {"retention.ms": retention}),
    ]


def dispute_topics(topics: TopicNames) -> list[TopicSpec]:
    """Dispute events: kept forever (the yearly assessment counts them), never compacted (every step
    of a dispute is its history). One partition: disputes are few, and readers want them all in order."""
    return [TopicSpec(topics.disputes, 1, {"retention.ms": "-1"})]


def router_topics(topics: TopicNames, held_partitions: int, held_retention_hours: int) -> list[TopicSpec]:
    """The router's own topics: held periodic records, backfill requests and the hand-over ledger."""
    return [
        TopicSpec(topics.held, held_partitions, {"retention.ms": str(held_retention_hours * _HOUR_MS)}),
        # One partition each: one worker serves backfills in request order; every router reads the ledger.
        TopicSpec(topics.backfill, 1, {"retention.ms": str(30 * 24 * _HOUR_MS)}),
        TopicSpec(topics.handover, 1, {"cleanup.policy": "compact"}),
    ]


def catalogue_topics(
    catalogue: Catalogue,
    topics: TopicNames,
    delivery_partitions: int,
    delivery_retention_hours: int,
    dead_letter_retention_hours: int,
) -> list[TopicSpec]:
    specs = []
    for code, entry in catalogue.data_classes.items():
        config = {"retention.ms": str(entry.retention_hours * _HOUR_MS)} if entry.retention_hours else {}
        specs.append(TopicSpec(topics.source(code), entry.partitions, config))
    for system in (*catalogue.systems, PUBLIC_CONSUMER):
        specs.append(
            TopicSpec(
                topics.delivery(system),
                delivery_partitions,
                {"retention.ms": str(delivery_retention_hours * _HOUR_MS)},
            )
        )
    specs.append(TopicSpec(topics.dead_letter, 3, {"retention.ms": str(dead_letter_retention_hours * _HOUR_MS)}))
    return specs + audit_topics(topics)


# The KRaft controller refuses an operation that would write more than 10,000 metadata records
# ("POLICY_VIOLATION: Unable to perform excessively large batch operation"). A new topic costs one
# record, one per partition and one per config entry; requests stay well under the cap.
MAX_RECORDS_PER_REQUEST = 4_000


def metadata_records(spec: TopicSpec) -> int:
    """How many controller records creating ``spec`` writes (a broker's replicas are not extra records)."""
    return 1 + spec.partitions + len(spec.config)


def chunk_specs(specs: list[TopicSpec], max_records: int = MAX_RECORDS_PER_REQUEST) -> list[list[TopicSpec]]:
    """Splits ``specs`` into consecutive requests of at most ``max_records`` records each."""
    chunks: list[list[TopicSpec]] = []
    current: list[TopicSpec] = []
    size = 0
    for spec in specs:
        cost = metadata_records(spec)
        if current and size + cost > max_records:
            chunks.append(current)
            current, size = [], 0
        current.append(spec)
        size += cost
    if current:
        chunks.append(current)
    return chunks


def ensure_topics(
    access: KafkaAccess,
    specs: list[TopicSpec],
    timeout_s: float = 30.0,
    max_records: int = MAX_RECORDS_PER_REQUEST,
) -> list[str]:
    """Creates missing topics, in requests the controller accepts; returns the names it created.

    Raises ProvisionError naming the topic and Kafka's reason when one cannot be created.
    """
    admin = access.admin()
    try:
        listed = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise ProvisionError(f"cannot list the topics on {access.bootstrap}: {exc.args[0]}") from exc
    missing = [s for s in specs if s.name not in listed]
    created: list[str] = []
    for chunk in chunk_specs(missing, max_records):
        created += _create(access, admin, chunk, timeout_s)
    # Waited for: every topic this broker did not list, also one the controller says exists already: a run
    # that gave up waiting ("run again to wait for them"), or another creator, made it; not served yet.
    if missing:
        _wait_until_served(access, admin, {s.name: s.partitions for s in missing}, timeout_s)
    if created:
        log.info("created %d topic(s)", len(created))
    return created


def _wait_until_served(access: KafkaAccess, admin: AdminClient, wanted: dict[str, int], timeout_s: float) -> None:
    """Returns once the broker's metadata shows every new topic with a leader for each partition.

    The controller answers CreateTopics once it has committed them; the broker serves them only once
    it has applied them, which for thousands of partitions takes minutes on a loaded machine. A
    consumer subscribing meanwhile is told the topics are missing and gets only part of its
    partitions. A topic this principal may create but not describe (the router creates the
    auditor's topics) never shows in its listing: asked by name, it answers "not authorized".
    """
    deadline = time.monotonic() + max(timeout_s, sum(wanted.values()) / 20)
    waiting = dict(wanted)
    while True:
        try:
            served = admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        except KafkaException as exc:
            raise ProvisionError(f"cannot read the topics back from {access.bootstrap}: {exc.args[0]}") from exc
        for name in list(waiting):
            if _served(served.get(name), waiting[name]):
                del waiting[name]
        for name in list(waiting)[:_ASKED_BY_NAME]:
            if _not_describable(admin, name):
                del waiting[name]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise ProvisionError(
                f"{len(waiting)} new topic(s) were not served by the broker at {access.bootstrap} in time "
                f"(e.g. {next(iter(waiting))}); the broker may still be creating them: run again to wait for them"
            )
        time.sleep(0.5)


_ASKED_BY_NAME = 10


def _served(topic: Any, partitions: int) -> bool:
    return (
        topic is not None
        and topic.error is None
        and len(topic.partitions) == partitions
        and all(p.leader >= 0 for p in topic.partitions.values())
    )


def _not_describable(admin: AdminClient, name: str) -> bool:
    try:
        topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
    except KafkaException:
        return False
    error = topic.error if topic is not None else None
    return error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _create(access: KafkaAccess, admin: AdminClient, chunk: list[TopicSpec], timeout_s: float) -> list[str]:
    try:
        futures = admin.create_topics(
            [NewTopic(s.name, num_partitions=s.partitions, replication_factor=-1, config=s.config) for s in chunk],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )
    except KafkaException as exc:
        raise ProvisionError(f"cannot ask {access.bootstrap} to create {len(chunk)} topic(s): {exc.args[0]}") from exc
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            code = error.code() if isinstance(error, KafkaError) else None
            if code == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise ProvisionError(
                    f"{access.principal} may not create topic {name}; provision the namespace's topics and ACLs "
                    "first (sharebus acl apply, as the admin)"
                ) from exc
            reason = error.str() if isinstance(error, KafkaError) else str(error)
            raise ProvisionError(f"Kafka did not create topic {name}: {reason}") from exc
        except TimeoutError as exc:
            raise ProvisionError(f"Kafka did not answer within {timeout_s:.0f}s when creating topic {name}") from exc
    return created
