"""How many copies of each topic the bus keeps, and what the cluster actually holds.

The rule: a replication factor of ``min(3, brokers)``, and ``min.insync.replicas`` of 2 where there
are 3 copies, so an acknowledged record (every producer uses ``acks=all``) is on two disks before the
producer hears "done", and one broker can be lost without stopping writes. With fewer brokers there
is nothing to wait for: 1.

The bus creates its topics with replication factor -1, "the cluster's default": the project's
launcher (and docker-compose.yml) set the brokers' defaults from this rule, internal topics included.
A cluster that is short of brokers then refuses to create a topic rather than make it with fewer
copies than promised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # not re-exported by name
from confluent_kafka.admin._resource import ResourceType

from sharebus_core.kafka import KafkaAccess
from sharebus_provision.errors import ProvisionError

log = logging.getLogger(__name__)

MAX_REPLICATION_FACTOR = 3


@dataclass(frozen=True, slots=True)
class Replication:
    factor: int
    min_insync: int

    @classmethod
    def for_brokers(cls, brokers: int) -> Replication:
        if brokers < 1:
            raise ValueError(f"a cluster needs at least one broker, not {brokers}")
        factor = min(MAX_REPLICATION_FACTOR, brokers)
        return cls(factor=factor, min_insync=2 if factor >= MAX_REPLICATION_FACTOR else 1)


def cluster_replication(access: KafkaAccess, timeout_s: float = 10.0) -> Replication:
    """The rule for the cluster ``access`` reaches, for clients that create topics with an explicit factor
    (Faust). Taken from what does not shrink while a broker is down: the brokers' own defaults
    (``default.replication.factor``, ``min.insync.replicas``, which the launcher sets from the rule) where the
    principal may read them, else the brokers the cluster knows of, the live ones and every one holding a
    replica of a topic the principal can see. Counting the live brokers alone, a router started while one of
    three was down made Faust's topics with 2 copies for good.

    With fewer brokers up than the factor, a topic Faust has yet to create is refused by the cluster (as the
    bus's own topics are) rather than made with fewer copies; the topics that exist are used as they are."""
    admin = access.admin()
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ProvisionError(f"cannot count the cluster's brokers: {exc.args[0]}") from exc
    live = set(metadata.brokers)
    replication = _broker_defaults(admin, sorted(live), timeout_s)
    if replication is None:
        known = live.union(*(p.replicas for t in metadata.topics.values() for p in t.partitions.values()))
        replication = Replication.for_brokers(max(len(known), 1))
    if len(live) < replication.factor:
        log.warning(
            "%d of the cluster's brokers are up, fewer than its %d copies: a topic not made yet is refused "
            "until enough are back",
            len(live),
            replication.factor,
        )
    return replication


def _broker_defaults(admin: AdminClient, live: list[int], timeout_s: float) -> Replication | None:
    """The brokers' default factor and min ISR, or None where the principal may not read broker configs
    (the router's may not: the defaults are the fallback's to infer)."""
    if not live:
        return None
    resource = ConfigResource(ResourceType.BROKER, str(live[0]))
    try:
        entries = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result()
        factor, min_insync = (
            int(entries[name].value) for name in ("default.replication.factor", "min.insync.replicas")
        )
    except (KafkaException, KeyError, TypeError, ValueError) as exc:
        log.info("broker defaults not readable (%s): counting the brokers the metadata knows of", exc)
        return None
    return Replication(factor=factor, min_insync=min_insync) if factor >= 1 else None


@dataclass(frozen=True, slots=True)
class TopicReplicas:
    """The fewest replicas and in-sync replicas over a topic's partitions, as the cluster reports them."""

    replicas: int
    in_sync: int


def topic_replicas(access: KafkaAccess, topics: Iterable[str], timeout_s: float = 10.0) -> dict[str, TopicReplicas]:
    """The replication of each named topic that exists (for checks and tests)."""
    try:
        metadata = access.admin().list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise ProvisionError(f"cannot read the cluster's topic metadata: {exc}") from exc
    found = {}
    for name in topics:
        topic = metadata.get(name)
        if topic is None or not topic.partitions:
            continue
        parts = topic.partitions.values()
        found[name] = TopicReplicas(min(len(p.replicas) for p in parts), min(len(p.isrs) for p in parts))
    return found


__all__ = ["MAX_REPLICATION_FACTOR", "Replication", "TopicReplicas", "topic_replicas"]
