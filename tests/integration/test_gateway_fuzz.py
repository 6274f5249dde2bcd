"""Fuzzes the gateway from its own OpenAPI document with schemathesis: no 5xx response, no crash.

Requests carry a valid key (AMR's registration system, a provider), so they reach the handlers
rather than stopping at authentication. The SSE feed is left out: it streams until the client
leaves, so a single example would never end. The number of examples is bounded to keep
``make test`` short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from tests.integration.conftest import FIXTURE_CATALOGUE
from tests.support.gateway import GatewayProcess, issue_key, start_gateway
from tests.support.identities import provision_bus
from tests.support.kafka import eventually
from tests.support.names import unique
from tests.support.registry import RegistryProcess
from tests.support.router import start_router


@dataclass
class FuzzTarget:
    gateway: GatewayProcess
    token: str


@pytest.fixture(scope="module")
def fuzz_target(
    kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    """One router and gateway for every operation: a bus per example would take minutes."""
    work = tmp_path_factory.mktemp("fuzz")
    namespace = unique("fz")
    catalogue = load_catalogue(FIXTURE_CATALOGUE)
    services = provision_bus(kafka_admin, catalogue, namespace, shared_registry.namespace)
    router = start_router(services["router"], namespace, shared_registry.url, FIXTURE_CATALOGUE, work)
    gateway = start_gateway(services["gateway"], namespace, shared_registry.url, FIXTURE_CATALOGUE, Path(work))
    try:
        token = issue_key(catalogue, kafka_admin, TopicNames(namespace).api_keys, "amr-reg")
        with gateway.client(token) as client:
            assert eventually(lambda: client.get("/v1/grants").status_code, lambda s: s == 200, 20) == 200
        yield FuzzTarget(gateway, token)
    finally:
        gateway.stop()
        router.stop()


def test_the_api_answers_anything_its_schema_allows_without_a_server_error(fuzz_target: FuzzTarget) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_target.gateway.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_target.token}"}
    fuzzed: list[str] = []
    for result in schema.get_all_operations():
        # An operation the schema cannot describe is a failure of the gateway's OpenAPI document.
        assert isinstance(result, Ok), result.err()
        operation = result.ok()
        if operation.path.endswith("/feed"):
            continue

        @settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def no_server_error(case: Case[Any]) -> None:
            response = case.call(headers=headers, timeout=30)
            case.validate_response(response, checks=[not_a_server_error])

        no_server_error()
        fuzzed.append(f"{operation.method.upper()} {operation.path}")
    # Every documented operation but the feed was exercised, none skipped silently.
    document = httpx.get(f"{fuzz_target.gateway.base_url}/openapi.json", timeout=10).json()
    documented = [f"{m.upper()} {p}" for p, ops in document["paths"].items() for m in ops if not p.endswith("/feed")]
    assert sorted(fuzzed) == sorted(documented)
