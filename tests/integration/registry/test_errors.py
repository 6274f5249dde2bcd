"""Confluent error codes, as the real client sees them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tests.integration.registry.schemas import V1, V2

pytestmark = pytest.mark.broker


def error_of(call: Callable[[], object]) -> tuple[int, int]:
    with pytest.raises(SchemaRegistryError) as caught:
        call()
    return caught.value.http_status_code, caught.value.error_code


def test_not_found_errors(client: SchemaRegistryClient) -> None:
    client.register_schema("people-value", V1)
    assert error_of(lambda: client.get_versions("nobody-value")) == (404, 40401)
    assert error_of(lambda: client.get_latest_version("nobody-value")) == (404, 40401)
    assert error_of(lambda: client.get_version("people-value", 7)) == (404, 40402)
    assert error_of(lambda: client.get_schema(4242)) == (404, 40403)
    assert error_of(lambda: client.lookup_schema("people-value", V2)) == (404, 40403)


def test_invalid_requests(client: SchemaRegistryClient) -> None:
    assert error_of(lambda: client.register_schema("s", Schema('{"type": "recrod"}', "AVRO"))) == (422, 42201)
    assert error_of(lambda: client.register_schema("s", Schema('{"type": "object"}', "JSON"))) == (422, 42201)
    assert error_of(lambda: client.get_version("people-value", 0)) == (422, 42202)
    assert error_of(lambda: client.set_compatibility(level="SIDEWAYS")) == (422, 42203)


def test_delete_order_errors(client: SchemaRegistryClient) -> None:
    client.register_schema("people-value", V1)
    client.register_schema("people-value", V2)
    assert error_of(lambda: client.delete_subject("people-value", permanent=True)) == (404, 40405)
    assert error_of(lambda: client.delete_version("people-value", 1, permanent=True)) == (404, 40407)
    client.delete_version("people-value", 1)
    assert error_of(lambda: client.delete_version("people-value", 1)) == (404, 40406)
    client.delete_subject("people-value")
    assert error_of(lambda: client.delete_subject("people-value")) == (404, 40404)
    assert error_of(lambda: client.delete_subject("nobody-value")) == (404, 40401)
