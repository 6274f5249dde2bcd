"""A registry failing on its side (any 5xx) while a projection is registered is an outage: the registration is
retried, and the record that needed it is routed, not dead-lettered."""

from __future__ import annotations

import asyncio
from types import MethodType

import httpx
import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_router.schema_cache import SchemaCache
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_router_handler import enterprise
from tests.unit.test_router_schema_versions import ENTERPRISE, before_removal, delivered_to

SCHEMA = '{"type":"record","name":"r","fields":[{"name":"a","type":"string"}]}'


class FailingOnce:
    """A registry whose first schema registration fails with ``status``; later ones get ids from ``first_id``."""

    def __init__(self, status: int, first_id: int = 42) -> None:
        self.status = status
        self.next_id = first_id
        self.posts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return httpx.Response(200, json={"compatibility": "NONE"})
        self.posts += 1
        if self.posts == 1:
            return httpx.Response(self.status, json={"error_code": self.status * 100 + 1, "message": "unavailable"})
        self.next_id += 1
        return httpx.Response(200, json={"id": self.next_id - 1})


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_registry_5xx_on_a_projection_registration_is_retried_not_raised(status: int) -> None:
    """Before, only 429 and 503 were retried: a 500 raised HTTPStatusError out of register()."""
    registry = FailingOnce(status)
    cache = SchemaCache("http://registry", 1.0, None, transport=httpx.MockTransport(registry))
    schema_id, _parsed = asyncio.run(cache.register("ns.dlv.x.c-value", SCHEMA))
    assert schema_id == 42
    assert registry.posts == 2


def test_a_registry_500_while_fitting_a_record_does_not_dead_letter_it() -> None:
    """End to end through RecordHandler.handle: a record of an earlier schema version needs its class's
    'whole' projection registered while it is routed; one 500 from the registry then turned the valid
    record into an UNPROCESSABLE dead letter, and no subscriber got it."""
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    registry = FailingOnce(500, first_id=5000)
    schemas = harness.schemas
    # The harness's offline registration replaced by the real one, over a registry that fails once.
    schemas._client = httpx.AsyncClient(base_url="http://registry", transport=httpx.MockTransport(registry))
    schemas.register = MethodType(SchemaCache.register, schemas)  # type: ignore[method-assign]

    harness.handle(ENTERPRISE, before_removal(harness, ENTERPRISE, enterprise()))

    assert [topic for topic, *_ in harness.sent if topic == TOPICS.dead_letter] == []
    assert registry.posts >= 2  # the failure was met, and the registration made again
    for consumer in ("tax-levy", "psb-case"):
        [record] = delivered_to(harness, consumer)
        assert record == enterprise()
