"""The registry's door on the secured broker: the credential is the caller's Kafka SCRAM credential.

Systems may read the subjects of their namespace's classes and of their own deliveries; only the
bus's own principals (and the admin) may register, delete or change compatibility. Unauthenticated
calls are 401, forbidden ones 403, both in Confluent's error shape; another system's subjects are 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sharebus_core.kafka import KafkaAccess
from sharebus_core.principals import Principals
from sharebus_core.registry_client import auth_of, registry_client
from sharebus_core.topics import TopicNames
from tests.integration.registry.schemas import V1, V2
from tests.support.kafka import eventually
from tests.support.principals import delete_scram_user, scram_user
from tests.support.registry import RegistryProcess, start_registry

pytestmark = pytest.mark.broker

MEDIA_TYPE = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
UNAUTHORIZED = {"error_code": 401, "message": "Unauthorized"}


@pytest.fixture
def system(kafka_admin: KafkaAccess, namespace: str) -> Iterator[str]:
    """``user:password`` of a catalogue system's principal (``<ns>.tax-levy``)."""
    username = Principals(namespace).system("tax-levy")
    access = scram_user(kafka_admin, username)
    yield auth_of(access) or ""
    delete_scram_user(kafka_admin, username)


@pytest.fixture
def router(kafka_admin: KafkaAccess, namespace: str) -> Iterator[str]:
    """``user:password`` of the namespace's router principal (``<ns>-router``), a bus service."""
    username = Principals(namespace).service("router")
    access = scram_user(kafka_admin, username)
    yield auth_of(access) or ""
    delete_scram_user(kafka_admin, username)


def refusal(call: Callable[[], object]) -> tuple[int, int]:
    with pytest.raises(SchemaRegistryError) as caught:
        call()
    return caught.value.http_status_code, caught.value.error_code


def test_without_a_credential_reads_writes_deletes_and_config_changes_are_401(registry: RegistryProcess) -> None:
    with registry.client() as admin:
        admin.register_schema("people-value", V1)
    with httpx.Client(base_url=registry.url, headers=MEDIA_TYPE, timeout=30) as anonymous:
        assert anonymous.get("/").json() == {}  # the readiness probe stays open, and says nothing
        for response in (
            anonymous.get("/subjects"),
            anonymous.get("/schemas/ids/1"),
            anonymous.post("/subjects/people-value/versions", json={"schema": V2.schema_str}),
            anonymous.delete("/subjects/people-value"),
            anonymous.put("/config", json={"compatibility": "NONE"}),
            anonymous.get("/subjects", headers={"Authorization": "Bearer not-basic"}),
        ):
            assert response.status_code == 401, response.request
            assert response.json() == UNAUTHORIZED
            assert response.headers["www-authenticate"].startswith("Basic ")
    with registry_client(registry.url, None) as client:  # confluent-kafka's client sees the same
        assert refusal(client.get_subjects) == (401, 401)
        assert refusal(lambda: client.register_schema("people-value", V2)) == (401, 401)
    with registry.client() as admin:
        assert admin.get_versions("people-value") == [1]
        assert admin.get_compatibility() == "BACKWARD"


def test_a_system_principal_reads_but_may_not_register_delete_or_configure(
    registry: RegistryProcess, system: str, namespace: str
) -> None:
    topics = TopicNames(namespace)
    people = topics.value_subject("301001002/000001")  # a class's subject: every system may read it
    others = topics.projection_subject("hrss-si", "301001002/000001")  # another system's grant
    with registry.client() as admin:
        schema_id = admin.register_schema(people, V1)
        hidden_id = admin.register_schema(others, V2)
    with registry.client(system) as client:
        assert client.get_versions(people) == [1]
        assert json.loads(client.get_schema(schema_id).schema_str or "") == json.loads(V1.schema_str or "")
        assert client.lookup_schema(people, V1).version == 1
        assert client.test_compatibility(people, V2)
        assert client.get_subjects() == [people]
        assert refusal(lambda: client.get_versions(others)) == (404, 40401)
        assert refusal(lambda: client.get_latest_version(others)) == (404, 40401)
        assert client.get_schema(hidden_id).schema_str  # by id, as a deserializer: names no subject
        assert refusal(lambda: client.register_schema(people, V2)) == (403, 40301)
        assert refusal(lambda: client.register_schema("new-value", V1)) == (403, 40301)
        assert refusal(lambda: client.delete_version(people, 1)) == (403, 40301)
        assert refusal(lambda: client.delete_subject(people)) == (403, 40301)
        assert refusal(lambda: client.set_compatibility(people, "NONE")) == (403, 40301)
        assert refusal(lambda: client.set_compatibility(level="NONE")) == (403, 40301)
    with registry.http(system, headers=MEDIA_TYPE, timeout=30) as http:
        denied = http.delete(f"/subjects/{people}")
        assert denied.json() == {
            "error_code": 40301,
            "message": f"User is denied operation Delete on Subject: {people}",
        }
        assert http.get(f"/schemas/ids/{hidden_id}/subjects").json() == []
    with registry.client() as admin:  # nothing changed
        assert admin.get_versions(people) == [1]
        assert admin.get_subjects() == sorted([people, others])
        assert admin.get_compatibility() == "BACKWARD"


def test_a_bus_principal_may_register_configure_and_delete(registry: RegistryProcess, router: str) -> None:
    with registry.client(router) as client:
        client.set_compatibility("people-value", "NONE")
        assert client.register_schema("people-value", V1) == 1
        assert client.register_schema("people-value", V2) == 2
        client.set_compatibility(level="FULL")
        assert client.delete_version("people-value", 1) == 1
        assert client.delete_subject("people-value") == [2]
        assert client.get_compatibility() == "FULL"


def test_a_wrong_password_or_an_unknown_user_is_401(registry: RegistryProcess, router: str, namespace: str) -> None:
    username = router.partition(":")[0]
    for auth in (f"{username}:wrong-password", f"{namespace}.nobody:whatever"):
        with registry.client(auth) as client:
            assert refusal(client.get_subjects) == (401, 401)
            assert refusal(client.get_compatibility) == (401, 401)
    with registry.client() as admin:
        assert admin.get_subjects() == []


def test_a_revoked_credential_stops_working_within_the_cache_ttl(
    kafka_admin: KafkaAccess, namespace: str, tmp_path: Path
) -> None:
    username = Principals(namespace).service("router")
    auth = auth_of(scram_user(kafka_admin, username)) or ""
    env = {"SHAREBUS_REGISTRY_AUTH_CACHE_TTL_S": "2"}
    with start_registry(kafka_admin, namespace, tmp_path, extra_env=env) as registry, registry.http(auth) as http:
        assert http.get("/subjects").status_code == 200
        delete_scram_user(kafka_admin, username)
        status = eventually(lambda: http.get("/subjects").status_code, lambda code: code == 401, timeout_s=15)
        assert status == 401
