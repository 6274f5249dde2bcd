"""Compatibility levels (global and per subject) and compatibility tests through the real client."""

from __future__ import annotations

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.schema_registry_client import ConfigCompatibilityLevel

from tests.integration.registry.schemas import V1, V2, V2_NO_DEFAULT, person

pytestmark = pytest.mark.broker


def test_an_incompatible_evolution_is_refused_with_409(client: SchemaRegistryClient) -> None:
    client.register_schema("people-value", V1)
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema("people-value", V2_NO_DEFAULT)
    assert caught.value.http_status_code == 409
    assert caught.value.error_code == 409
    assert "incompatible" in caught.value.error_message
    assert client.get_versions("people-value") == [1]
    assert client.register_schema("people-value", V2) == 2


def test_the_global_level_defaults_to_backward_and_can_change(client: SchemaRegistryClient) -> None:
    assert client.get_compatibility() == "BACKWARD"
    # Annotated as str, the client actually returns the registry's answer as is.
    answer: object = client.set_compatibility(level="full")
    assert answer == {"compatibility": "FULL"}
    assert client.get_compatibility() == "FULL"
    client.register_schema("people-value", V2)
    # FULL: removing a field with a default is fine, adding one without is not.
    client.register_schema("people-value", V1)
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema("people-value", V2_NO_DEFAULT)
    assert caught.value.http_status_code == 409
    assert client.delete_config().compatibility_level == ConfigCompatibilityLevel.FULL
    assert client.get_compatibility() == "BACKWARD"


def test_a_subject_level_overrides_the_global_one(client: SchemaRegistryClient) -> None:
    client.register_schema("people-value", V1)
    client.register_schema("other-value", V1)
    client.set_compatibility("people-value", "NONE")
    assert client.get_compatibility("people-value") == "NONE"
    assert client.register_schema("people-value", V2_NO_DEFAULT) == 2
    with pytest.raises(SchemaRegistryError):
        client.register_schema("other-value", V2_NO_DEFAULT)

    deleted = client.delete_config("people-value")
    assert deleted.compatibility_level == ConfigCompatibilityLevel.NONE
    with pytest.raises(SchemaRegistryError) as caught:
        client.get_compatibility("people-value")
    assert (caught.value.http_status_code, caught.value.error_code) == (404, 40408)


def test_transitive_levels_check_every_live_version(client: SchemaRegistryClient) -> None:
    client.register_schema("people-value", V1)
    client.register_schema("people-value", V2)
    # Reads version 2's data but not version 1's, which has no age and no default for it.
    assert client.test_compatibility("people-value", V2_NO_DEFAULT)
    client.set_compatibility("people-value", "BACKWARD_TRANSITIVE")
    assert not client.test_compatibility_all_versions("people-value", V2_NO_DEFAULT)
    with pytest.raises(SchemaRegistryError) as caught:
        client.register_schema("people-value", V2_NO_DEFAULT)
    assert caught.value.http_status_code == 409


def test_compatibility_against_a_chosen_version(client: SchemaRegistryClient) -> None:
    client.register_schema("people-value", V1)
    client.register_schema("people-value", V2)
    string_age = person({"name": "age", "type": "string", "default": ""})
    assert client.test_compatibility("people-value", string_age, version=1)
    assert not client.test_compatibility("people-value", string_age, version=2)
    assert not client.test_compatibility("people-value", string_age, version="latest", verbose=True)
    assert client.test_compatibility_all_versions("new-value", string_age)
