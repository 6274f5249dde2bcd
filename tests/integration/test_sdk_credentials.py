"""The SDK with a system's own credential: records cross, and every refusal names the system."""

from __future__ import annotations

import pytest

from sharebus_access.credentials import SystemCredentials
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings
from sharebus_sdk import (
    CredentialError,
    NotProvider,
    Publisher,
    PublisherSettings,
    Subscriber,
    SubscriberSettings,
)
from tests.integration.conftest import Bus
from tests.support.records import ENTERPRISE, enterprise
from tests.support.subscribe import collect


def _as(bus: Bus, access: KafkaAccess) -> BusSettings:
    return BusSettings.model_validate({**bus.settings.model_dump(), **access.settings_fields()})


def test_systems_publish_and_receive_with_their_own_credentials(bus: Bus) -> None:
    issuer = SystemCredentials(bus.access, bus.catalogue, bus.namespace)
    provider, consumer = issuer.renew("amr-reg").access, issuer.renew("tax-levy").access
    settings = PublisherSettings.model_validate(_as(bus, provider).model_dump())
    with Publisher("AMR", settings, bus.catalogue) as publisher:
        for seq in range(20):
            publisher.publish(ENTERPRISE, enterprise(seq))
    received = collect(_as(bus, consumer), "tax-levy", 20)
    assert sorted(d.value["uscc"] for d in received.deliveries) == sorted(f"U{seq}" for seq in range(20))


def test_a_missing_credential_names_the_department_and_the_setting(bus: Bus) -> None:
    anonymous = PublisherSettings.model_validate(
        {**bus.settings.model_dump(), "kafka_username": None, "kafka_password": None}
    )
    with pytest.raises(CredentialError, match=r"department AMR: no Kafka credential.*SHAREBUS_KAFKA_USERNAME"):
        Publisher("AMR", anonymous, bus.catalogue)


def test_a_refused_credential_names_the_system(bus: Bus) -> None:
    issuer = SystemCredentials(bus.access, bus.catalogue, bus.namespace)
    wrong = issuer.renew("amr-reg").access.as_user(f"{bus.namespace}.amr-reg", "not-the-password")
    settings = PublisherSettings.model_validate(_as(bus, wrong).model_dump())
    publisher = Publisher("AMR", settings, bus.catalogue)
    # The registry takes the same credential, and refuses it first.
    with pytest.raises(CredentialError, match=rf"refused the credential of {bus.namespace}\.amr-reg"):
        publisher.publish(ENTERPRISE, enterprise(1))


def test_a_system_may_not_publish_another_systems_class_nor_read_as_another(bus: Bus) -> None:
    issuer = SystemCredentials(bus.access, bus.catalogue, bus.namespace)
    tax = issuer.renew("tax-levy").access
    # TAX's credential cannot act for AMR: the SDK says so before the broker would refuse it.
    with (
        Publisher("AMR", PublisherSettings.model_validate(_as(bus, tax).model_dump()), bus.catalogue) as publisher,
        pytest.raises(NotProvider, match=r"system tax-levy does not provide data class 301001001/000001"),
    ):
        publisher.publish(ENTERPRISE, enterprise(1))
    with pytest.raises(CredentialError, match=r"system psb-case: the credential is .*tax-levy's"):
        Subscriber("psb-case", SubscriberSettings.model_validate(_as(bus, tax).model_dump()))
