"""A fresh registry (own namespace, so own ``_schemas`` topic) for every test, on the session broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from sharebus_core.kafka import KafkaAccess
from tests.support.names import unique
from tests.support.registry import RegistryProcess, start_registry


@pytest.fixture
def namespace() -> str:
    return unique("t")


@pytest.fixture
def registry(kafka_admin: KafkaAccess, namespace: str, tmp_path: Path) -> Iterator[RegistryProcess]:
    with start_registry(kafka_admin, namespace, tmp_path) as process:
        yield process


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[SchemaRegistryClient]:
    with registry.client() as sr_client:
        yield sr_client
