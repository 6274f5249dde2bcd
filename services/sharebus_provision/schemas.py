"""Registers every data class's schema under the subject of its source topic."""

from __future__ import annotations

import time

import httpx
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sharebus_core.catalogue import Catalogue
from sharebus_core.registry_client import registry_client
from sharebus_core.topics import TopicNames
from sharebus_provision.errors import ProvisionError


def wait_for_registry(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise ProvisionError(f"the schema registry at {url} did not answer within {timeout_s:.0f}s ({last})")


def register_catalogue_schemas(
    catalogue: Catalogue, topics: TopicNames, registry_url: str, registry_auth: str | None
) -> dict[str, int]:
    """Returns class code -> schema id. An incompatible change names the class and the registry's reason.

    ``registry_auth`` (``user:password``) must be a principal the registry lets register schemas.
    """
    # GET / is the registry's open readiness probe: it answers without a credential.
    wait_for_registry(registry_url)
    client = registry_client(registry_url, registry_auth)
    ids: dict[str, int] = {}
    for code, schema in catalogue.schemas.items():
        subject = topics.value_subject(code)
        try:
            ids[code] = client.register_schema(subject, Schema(schema.text, "AVRO"))
        except SchemaRegistryError as exc:
            raise ProvisionError(
                f"registering the schema of data class {code} under {subject} failed "
                f"(HTTP {exc.http_status_code}, error {exc.error_code}): {exc.error_message}"
            ) from exc
    return ids
