"""Bad schema ids cost the stream no registry call per record, and the memory of them is bounded."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import httpx
import pytest

from sharebus_core.catalogue import load_catalogue
from sharebus_router.dead_letters import DLQ_REASON
from sharebus_router.schema_cache import SchemaCache, UnknownSchemaId
from sharebus_router.settings import RouterSettings
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"
PENALTY_ID = 7


class Registry:
    """A registry that knows one schema (PENALTY's, as id 7) and counts the requests it answers."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.penalty = load_catalogue(FIXTURE_CATALOGUE).schema(PENALTY).text

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests[request.url.path] += 1
        if request.url.path == f"/schemas/ids/{PENALTY_ID}":
            return httpx.Response(200, json={"schema": self.penalty})
        if request.url.path == f"/schemas/ids/{PENALTY_ID}/versions":
            return httpx.Response(200, json=[{"subject": TOPICS.value_subject(PENALTY), "version": 1}])
        return httpx.Response(404, json={"error_code": 40403})

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cache(registry: Registry, clock: Clock, ttl_s: float = 30.0, entries: int = 10_000) -> SchemaCache:
    transport = httpx.MockTransport(registry)
    return SchemaCache("http://registry", 1.0, None, ttl_s, entries, transport=transport, clock=clock)


def test_an_unknown_id_is_asked_for_once_per_interval() -> None:
    registry, clock = Registry(), Clock()
    schemas = cache(registry, clock, ttl_s=30.0)

    async def ask(times: int) -> None:
        for _ in range(times):
            with pytest.raises(UnknownSchemaId):
                await schemas.get(4242)

    asyncio.run(ask(500))
    assert registry.total == 1
    clock.now = 31.0
    asyncio.run(ask(500))
    assert registry.total == 2


def test_the_memory_of_unknown_ids_is_bounded() -> None:
    registry, clock = Registry(), Clock()
    schemas = cache(registry, clock, entries=100)

    async def ask() -> None:
        for schema_id in range(10_000, 11_000):
            with pytest.raises(UnknownSchemaId):
                await schemas.get(schema_id)

    asyncio.run(ask())
    assert len(schemas.unknown) == 100
    assert 10_999 in schemas.unknown
    assert 10_000 not in schemas.unknown


def test_records_framed_with_another_class_schema_cost_no_registry_call_each() -> None:
    harness = Harness(load_catalogue(FIXTURE_CATALOGUE))
    registry = Registry()
    transport = httpx.MockTransport(registry)
    harness.handler.schemas = SchemaCache("http://registry", 1.0, None, transport=transport)
    penalty = {"uscc": "U1", "person_id_number": "11010519491231002X", "amount": 1.0, "seq": 1}
    value = harness.encode(PENALTY, penalty, schema_id=PENALTY_ID)
    for offset in range(200):
        harness.handle(ENTERPRISE, value, offset=offset)
    assert len(harness.sent) == 200
    assert {dict(headers)[DLQ_REASON] for *_, headers in harness.sent} == {b"schema_mismatch"}
    # The first lookup, and a few re-checks (the id might have been registered for the class since);
    # then the budget is spent until the interval ends.
    assert registry.total <= 2 + 2 * harness.handler.schemas.rechecks.burst, registry.requests


def test_a_mismatched_id_is_rechecked_at_once_a_few_times_then_once_the_interval_ends() -> None:
    registry, clock = Registry(), Clock()
    schemas = cache(registry, clock, ttl_s=30.0)
    subject = TOPICS.value_subject(ENTERPRISE)

    async def recheck(times: int) -> None:
        await schemas.get(PENALTY_ID)
        for _ in range(times):
            assert subject not in (await schemas.recheck(PENALTY_ID, subject)).subjects

    asyncio.run(recheck(100))
    rechecked = registry.requests[f"/schemas/ids/{PENALTY_ID}"]
    assert rechecked == 1 + schemas.rechecks.burst
    clock.now = 31.0
    asyncio.run(recheck(100))
    assert registry.requests[f"/schemas/ids/{PENALTY_ID}"] == rechecked + schemas.rechecks.burst


def test_router_limits_have_these_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_MESSAGE_BYTES", "UNKNOWN_SCHEMA_TTL_S", "UNKNOWN_SCHEMA_CACHE_SIZE"):
        monkeypatch.delenv(f"SHAREBUS_ROUTER_{name}", raising=False)
    settings = RouterSettings()
    # faust's own default for the producer's max request size, under the broker's 1 MiB message.max.bytes.
    assert settings.max_message_bytes == 1_000_000
    assert settings.unknown_schema_ttl_s == dt.timedelta(seconds=30).total_seconds()
    assert settings.unknown_schema_cache_size == 10_000


class ProjectionRegistry:
    """Holds one projection subject already (id 40); registers anything else as id 41."""

    def __init__(self, held_schema: str, listing_fails: bool = False) -> None:
        self.held_schema = held_schema
        self.listing_fails = listing_fails
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.url.path == "/schemas":
            if self.listing_fails:
                return httpx.Response(503, json={"error_code": 50301})
            assert request.url.params["subjectPrefix"] == "ns.dlv."
            return httpx.Response(200, json=[{"subject": "ns.dlv.a.x-value", "id": 40, "schema": self.held_schema}])
        if request.method == "PUT":
            return httpx.Response(200, json={"compatibility": "NONE"})
        return httpx.Response(200, json={"id": 41})


def test_projections_already_registered_as_they_are_need_no_request_after_one_listing() -> None:
    penalty = load_catalogue(FIXTURE_CATALOGUE).schema(PENALTY).text
    enterprise = load_catalogue(FIXTURE_CATALOGUE).schema(ENTERPRISE).text
    registry = ProjectionRegistry(penalty.replace("\n", " "))  # the same schema, written differently
    schemas = SchemaCache(
        "http://registry", 1.0, None, transport=httpx.MockTransport(registry), registered_prefix="ns.dlv."
    )

    async def run() -> list[int]:
        same = await schemas.register("ns.dlv.a.x-value", penalty)
        changed = await schemas.register("ns.dlv.a.x-value", enterprise)
        new = await schemas.register("ns.dlv.b.x-value", penalty)
        return [same[0], changed[0], new[0]]

    assert asyncio.run(run()) == [40, 41, 41]
    assert registry.requests.count(("GET", "/schemas")) == 1
    assert schemas.registrations == 2
    assert schemas.cached(40) is not None


def test_a_failed_listing_only_means_every_projection_is_registered() -> None:
    penalty = load_catalogue(FIXTURE_CATALOGUE).schema(PENALTY).text
    registry = ProjectionRegistry(penalty, listing_fails=True)
    schemas = SchemaCache(
        "http://registry", 1.0, None, transport=httpx.MockTransport(registry), registered_prefix="ns.dlv."
    )
    assert asyncio.run(schemas.register("ns.dlv.a.x-value", penalty))[0] == 41
    assert ("POST", "/subjects/ns.dlv.a.x-value/versions") in registry.requests


def test_a_busy_registry_is_asked_again_not_taken_for_a_refusal() -> None:
    penalty = load_catalogue(FIXTURE_CATALOGUE).schema(PENALTY).text
    answers = iter([429, 503, 200])
    calls: list[str] = []

    def registry(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "PUT":
            status = next(answers)
            return httpx.Response(status, json={"error_code": status * 100 + 1} if status >= 300 else {})
        return httpx.Response(200, json={"id": 9})

    schemas = SchemaCache("http://registry", 1.0, None, transport=httpx.MockTransport(registry))
    assert asyncio.run(schemas.register("ns.dlv.a.x-value", penalty))[0] == 9
    assert calls == ["PUT", "PUT", "PUT", "POST"]


def test_a_registry_refusal_is_not_retried() -> None:
    penalty = load_catalogue(FIXTURE_CATALOGUE).schema(PENALTY).text
    schemas = SchemaCache(
        "http://registry", 1.0, None, transport=httpx.MockTransport(lambda _r: httpx.Response(403, json={}))
    )
    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(schemas.register("ns.dlv.a.x-value", penalty))


def test_a_new_projection_subject_is_registered_with_one_request_and_its_level_set_only_when_refused() -> None:
    penalty = load_catalogue(FIXTURE_CATALOGUE).schema(PENALTY).text
    enterprise = load_catalogue(FIXTURE_CATALOGUE).schema(ENTERPRISE).text
    registry = ProjectionRegistry(penalty)
    schemas = SchemaCache(
        "http://registry", 1.0, None, transport=httpx.MockTransport(registry), registered_prefix="ns.dlv."
    )
    # Absent from the listing: its first schema needs no level (there is nothing to be compatible with).
    asyncio.run(schemas.register("ns.dlv.b.x-value", penalty))
    assert registry.requests == [("GET", "/schemas"), ("POST", "/subjects/ns.dlv.b.x-value/versions")]
    # Listed with another schema: the level goes first, so the change is never refused.
    registry.requests.clear()
    asyncio.run(schemas.register("ns.dlv.a.x-value", enterprise))
    assert registry.requests == [("PUT", "/config/ns.dlv.a.x-value"), ("POST", "/subjects/ns.dlv.a.x-value/versions")]

    # Registered by another worker since the listing, with a schema the default level refuses.
    refused = iter([409])

    def racing(request: httpx.Request) -> httpx.Response:
        registry.requests.append((request.method, request.url.path))
        if request.url.path == "/schemas":
            return httpx.Response(200, json=[])
        if request.method == "POST" and next(refused, None) == 409:
            return httpx.Response(409, json={"error_code": 409})
        return httpx.Response(200, json={"compatibility": "NONE"} if request.method == "PUT" else {"id": 42})

    registry.requests.clear()
    other = SchemaCache(
        "http://registry", 1.0, None, transport=httpx.MockTransport(racing), registered_prefix="ns.dlv."
    )
    assert asyncio.run(other.register("ns.dlv.c.x-value", enterprise))[0] == 42
    assert registry.requests[1:] == [
        ("POST", "/subjects/ns.dlv.c.x-value/versions"),
        ("PUT", "/config/ns.dlv.c.x-value"),
        ("POST", "/subjects/ns.dlv.c.x-value/versions"),
    ]
