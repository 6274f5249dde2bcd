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

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaException

from sharebus_core.kafka import KafkaAccess
from sharebus_provision.errors import ProvisionError

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
    """The rule for the cluster ``access`` reaches, counting the brokers its metadata lists (any
    principal may ask). For clients that create topics with an explicit factor (Faust)."""
    try:
        brokers = len(access.admin().list_topics(timeout=timeout_s).brokers)
    except KafkaException as exc:
        raise ProvisionError(f"cannot count the cluster's brokers: {exc.args[0]}") from exc
    return Replication.for_brokers(max(brokers, 1))


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
