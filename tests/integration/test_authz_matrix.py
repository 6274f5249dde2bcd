"""The authorisation matrix on the real, secured broker: every system of the fixture catalogue, with
a plain confluent-kafka client and its own credential, against every topic and group of its
namespace. What the catalogue permits works; everything else is refused with Kafka's authorisation
error. Systems are probed in parallel, one producer and one consumer each."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from sharebus_access.credentials import SystemCredentials
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Principals
from sharebus_core.topics import TopicNames
from tests.support.access import (
    OK,
    connects,
    control_topics,
    group_outcome,
    login_refusal,
    provision_namespace,
    read_outcomes,
    transaction_outcome,
    write_outcomes,
)
from tests.support.names import unique

pytestmark = pytest.mark.broker

FIXTURE_CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue"
TOPIC_REFUSED = "TOPIC_AUTHORIZATION_FAILED"
GROUP_REFUSED = "GROUP_AUTHORIZATION_FAILED"
TXN_REFUSED = "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
T = TypeVar("T")


@dataclass(frozen=True)
class Matrix:
    admin: KafkaAccess
    catalogue: Catalogue
    topics: TopicNames
    systems: dict[str, KafkaAccess]

    @property
    def all_topics(self) -> list[str]:
        sources = [self.topics.source(code) for code in self.catalogue.data_classes]
        deliveries = [self.topics.delivery(system) for system in self.catalogue.systems]
        return sources + deliveries + control_topics(self.topics)

    def own_sources(self, system: str) -> set[str]:
        return {self.topics.source(c) for c, entry in self.catalogue.data_classes.items() if entry.system == system}

    def each_system(self, probe: Callable[[str, KafkaAccess], T]) -> dict[str, T]:
        with ThreadPoolExecutor(len(self.systems)) as pool:
            futures = {system: pool.submit(probe, system, access) for system, access in self.systems.items()}
            return {system: future.result() for system, future in futures.items()}


@pytest.fixture(scope="module")
def matrix(kafka_admin: KafkaAccess) -> Matrix:
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    namespace = unique("authz")
    topics = provision_namespace(kafka_admin, catalogue, namespace)
    # One record in every delivery topic, so that a permitted read has something to read.
    producer = kafka_admin.producer()
    for system in catalogue.systems:
        producer.produce(topics.delivery(system), b"for-" + system.encode(), key=b"k")
    assert producer.flush(30) == 0
    credentials = SystemCredentials(kafka_admin, catalogue, namespace)
    systems = {system: credentials.renew(system).access for system in sorted(catalogue.systems)}
    return Matrix(kafka_admin, catalogue, topics, systems)


def test_each_system_writes_its_own_sources_and_nothing_else(matrix: Matrix) -> None:
    observed = matrix.each_system(lambda system, access: write_outcomes(access, matrix.all_topics))
    expected = {
        system: {topic: OK if topic in matrix.own_sources(system) else TOPIC_REFUSED for topic in matrix.all_topics}
        for system in matrix.systems
    }
    assert observed == expected
    assert any(OK in outcomes.values() for outcomes in observed.values())  # the provider's writes landed


def test_each_system_reads_its_own_delivery_topic_in_its_own_group_and_nothing_else(matrix: Matrix) -> None:
    principals = Principals(matrix.topics.namespace)

    def probe(system: str, access: KafkaAccess) -> dict[str, str]:
        return read_outcomes(access, f"{principals.consumer_group_prefix(system)}matrix", matrix.all_topics)

    expected = {
        system: {topic: OK if topic == matrix.topics.delivery(system) else TOPIC_REFUSED for topic in matrix.all_topics}
        for system in matrix.systems
    }
    assert matrix.each_system(probe) == expected


def test_foreign_groups_and_the_auditors_transactions_are_refused(matrix: Matrix) -> None:
    principals = Principals(matrix.topics.namespace)
    foreign = [f"{principals.consumer_group_prefix(s)}matrix-join" for s in matrix.systems]
    foreign += [
        matrix.topics.router_app_id,
        matrix.topics.router_faust_id,
        matrix.topics.auditor_app_id,
        f"{principals.service('router')}.reader-x",
    ]

    def probe(system: str, access: KafkaAccess) -> dict[str, str]:
        own = matrix.topics.delivery(system)
        outcomes = {group: group_outcome(access, group, own) for group in foreign}
        outcomes["transaction"] = transaction_outcome(access, matrix.topics.auditor_app_id)
        return outcomes

    def allowed(system: str, group: str) -> str:
        return OK if group.startswith(principals.consumer_group_prefix(system)) else GROUP_REFUSED

    expected = {
        system: {**{group: allowed(system, group) for group in foreign}, "transaction": TXN_REFUSED}
        for system in matrix.systems
    }
    assert matrix.each_system(probe) == expected


def test_no_credential_and_a_wrong_password_are_refused(matrix: Matrix) -> None:
    access = next(iter(matrix.systems.values()))
    assert connects(access)
    assert login_refusal(access) is None
    wrong = access.as_user(access.username or "", "not-the-password")
    assert login_refusal(wrong) is not None
    stranger = access.as_user(Principals(matrix.topics.namespace).system("no-such-system"), "whatever")
    assert login_refusal(stranger) is not None
    # No credential at all: plaintext, or TLS without SASL. The listener speaks only SASL_SSL.
    assert not connects(KafkaAccess(bootstrap=matrix.admin.bootstrap, security_protocol="PLAINTEXT"), timeout_s=3)
    # A plain client as a department would write it (KafkaAccess cannot even express TLS without SASL).
    tls_only = AdminClient(
        {
            "bootstrap.servers": matrix.admin.bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.location": str(matrix.admin.ca_file),
            "log_level": 0,
        }
    )
    with pytest.raises(KafkaException):
        tls_only.list_topics(timeout=3)
