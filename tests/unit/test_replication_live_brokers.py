"""The copies Faust's topics get come from the cluster's size, not from how many of its brokers are up right now."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import cast

from confluent_kafka import KafkaError, KafkaException

from sharebus_core.kafka import KafkaAccess
from sharebus_provision.replication import Replication, cluster_replication


def _topic(*replicas: list[int]) -> SimpleNamespace:
    return SimpleNamespace(partitions={i: SimpleNamespace(replicas=r) for i, r in enumerate(replicas)})


class _Admin:
    """A three-broker cluster (default.replication.factor=3, min.insync.replicas=2) with broker 3 down: the
    metadata lists only the live (unfenced) brokers; the topics' replica assignments still name broker 3."""

    def __init__(self, configs_allowed: bool, topics: dict[str, SimpleNamespace]) -> None:
        self.configs_allowed = configs_allowed
        self.topics = topics

    def list_topics(self, timeout: float) -> object:
        return SimpleNamespace(brokers={1: object(), 2: object()}, topics=self.topics)

    def describe_configs(self, resources: list[object], request_timeout: float) -> dict[object, Future[object]]:
        answer: Future[object] = Future()
        if self.configs_allowed:
            values = {"default.replication.factor": "3", "min.insync.replicas": "2"}
            answer.set_result({name: SimpleNamespace(value=value) for name, value in values.items()})
        else:  # the router's principal has no DESCRIBE_CONFIGS on the cluster
            answer.set_exception(KafkaException(KafkaError(KafkaError.CLUSTER_AUTHORIZATION_FAILED)))
        return {resources[0]: answer}


class _Access:
    def __init__(self, admin: _Admin) -> None:
        self._admin = admin

    def admin(self) -> _Admin:
        return self._admin


def replication(configs_allowed: bool, topics: dict[str, SimpleNamespace] | None = None) -> Replication:
    return cluster_replication(cast(KafkaAccess, _Access(_Admin(configs_allowed, topics or {}))))


def test_a_router_started_while_one_of_three_brokers_is_down_still_asks_for_three_copies() -> None:
    """Counting live brokers gave Faust's topics (the periods changelog) 2 copies for good, under the
    cluster's min.insync.replicas=2: one more broker lost would stop their writes."""
    assert replication(configs_allowed=True) == Replication(factor=3, min_insync=2)


def test_without_leave_to_read_broker_configs_the_brokers_holding_replicas_count_too() -> None:
    topics = {"ns.src.a": _topic([1, 2, 3], [2, 3, 1]), "ns.grants": _topic([3, 1, 2])}
    assert replication(configs_allowed=False, topics=topics) == Replication(factor=3, min_insync=2)


def test_a_single_broker_cluster_still_gets_one_copy() -> None:
    admin = _Admin(configs_allowed=False, topics={"ns.src.a": _topic([1])})
    admin.list_topics = lambda timeout: SimpleNamespace(brokers={1: object()}, topics=admin.topics)  # type: ignore[method-assign]
    assert cluster_replication(cast(KafkaAccess, _Access(admin))) == Replication(factor=1, min_insync=1)
