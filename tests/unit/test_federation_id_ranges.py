"""The schema follower checks the registries' id ranges, keeps a district's up ids in its range, and isolates a
refused import (docs/federation.md, "Schemas carried with the data")."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from sharebus_cli.run_districts import district_first_id
from sharebus_federation.follower import SchemaFollower
from sharebus_federation.metrics import FederationCollector
from sharebus_federation.mirror import MirrorHealth
from sharebus_federation.service import FederationService
from sharebus_federation.settings import FederationSettings
from sharebus_registry.api import create_app
from sharebus_registry.api_auth import RegistryGuard
from sharebus_registry.auth import Authenticator, RegistryPolicy
from sharebus_registry.schemas import ParsedSchema, parse
from sharebus_registry.state import ID_SPAN
from sharebus_registry.store import SchemaStore
from tests.unit.federation_registries import StoreEnd, store_from

DISTRICT_FIRST = 1 + ID_SPAN
UP = "sharebus.src.301002001.000001-value"  # the district's federated class
UP_OTHER = "sharebus.src.301002001.000002-value"
UP_FINE = "sharebus.src.301002001.000003-value"
DOWN = "sharebus.dlv.yb-tax."  # the city's projections for the district's system yb-tax
PROJECTION = f"{DOWN}101001001.000001-value"


def record(name: str, *fields: str) -> ParsedSchema:
    return parse(
        json.dumps({"type": "record", "name": name, "fields": [{"name": f, "type": "string"} for f in fields]})
    )


POPULATION = record("Population", "name", "id_number")
PENALTY = record("Penalty", "uscc", "decision")
LICENCE = record("Licence", "uscc", "number")


def follower(city: SchemaStore, district: SchemaStore, up: tuple[str, ...] = (UP,)) -> SchemaFollower:
    return SchemaFollower(
        StoreEnd("http://city", city), StoreEnd("http://district", district), up, (DOWN,), district_code="yubei"
    )


def test_a_district_registry_in_the_citys_range_gets_no_import_and_the_follower_says_why() -> None:
    """Before, nothing compared the ranges: a district registry left at the default first id (the city's 1)
    was accepted, the down import of the city's projection was refused, and a district subscriber resolved the
    city's id to the district's own schema and decoded the city's records into wrong values."""
    city, district = store_from(1), store_from(1)
    city.register(PROJECTION, POPULATION)
    district.register(UP, PENALTY)
    schemas = follower(city, district)

    assert schemas.run_once() == 0
    assert city.subjects() == [PROJECTION]  # nothing imported either way
    assert district.subjects() == [UP]
    health = schemas.health()
    assert health["healthy"] is False
    assert health["id_ranges"] is None
    error = str(health["range_error"])
    assert "overlap" in error
    assert "1..10000000" in error
    assert "SHAREBUS_REGISTRY_FIRST_ID" in error
    assert schemas.last_error == error


def test_the_federation_service_starts_nothing_while_the_ranges_overlap_and_reports_503() -> None:
    """The service's start (MirrorMaker 2, the follower's thread) waits for a pass over disjoint ranges; until
    then /healthz is unhealthy and names the overlap. Before, it imported and mirrored whatever the ranges."""
    city, district = store_from(1), store_from(1)
    service = object.__new__(FederationService)
    service.settings = FederationSettings(schema_sync_s=0.01)
    service.follower = follower(city, district)
    service._health_lock = threading.Lock()
    service._health = MirrorHealth(running=False, flows={})
    service.plan = type("Plan", (), {"district": "yubei"})()
    stop = threading.Event()
    passes: list[int] = []
    original = service.follower.run_once

    def counted() -> int:
        passes.append(1)
        if len(passes) == 3:
            stop.set()  # a SIGTERM while it waits
        return original()

    service.follower.run_once = counted  # type: ignore[method-assign]
    assert service._ranges_disjoint(stop) is False
    assert len(passes) == 3  # it kept checking, every schema_sync_s, until stopped
    body = service.health_body()
    assert body["healthy"] is False
    assert "overlap" in str(body["schema_error"])
    assert "overlap" in str(body["schemas"]["range_error"])  # type: ignore[index]

    district_ok = store_from(DISTRICT_FIRST)
    service.follower = follower(city, district_ok)
    assert service._ranges_disjoint(threading.Event()) is True


def test_a_registry_tells_its_id_range_to_an_authenticated_caller_only() -> None:
    """The endpoint the follower reads both ranges from (it did not exist: nothing could compare them)."""
    guard = RegistryGuard(
        Authenticator(lambda user, password: password == "r", failure_delay_s=0), RegistryPolicy.of(["sharebus-router"])
    )
    token = "Basic " + base64.b64encode(b"sharebus.yb-tax:r").decode()

    async def main() -> tuple[int, int, Any]:
        async with TestClient(TestServer(create_app(store_from(DISTRICT_FIRST), guard=guard))) as client:
            anonymous = await client.get("/v1/metadata/id-range")
            reader = await client.get("/v1/metadata/id-range", headers={"Authorization": token})
            return anonymous.status, reader.status, await reader.json(content_type=None)

    anonymous, status, body = asyncio.run(main())
    assert anonymous == 401
    assert (status, body) == (200, {"first_id": DISTRICT_FIRST, "last_id": 2 * ID_SPAN})


def test_one_refused_import_leaves_every_other_import_in_both_directions() -> None:
    """Before, the first refused version raised out of the pass, and the directions were summed in one
    generator: one poisoned up version stopped every later up subject and the whole down direction, every
    pass, so district subscribers skipped the city's records as undecodable and lost them."""
    city, district = store_from(1), store_from(DISTRICT_FIRST)
    # The city already holds the district's first id for another schema (e.g. the district's registry lost
    # its log and handed the id out again): the up import of UP is refused.
    city.import_version(UP_OTHER, LICENCE, DISTRICT_FIRST)
    poisoned = district.register(UP, PENALTY)
    assert poisoned == DISTRICT_FIRST
    fine = district.register(UP_FINE, record("Fine", "uscc"))
    projection = city.register(PROJECTION, POPULATION)
    schemas = follower(city, district, up=(UP, UP_FINE))

    assert schemas.run_once() == 2
    assert district.schema_by_id(projection)  # down imported
    assert city.schema_by_id(fine)  # the other up subject
    assert UP_FINE in city.subjects()
    assert UP not in city.subjects()
    health = schemas.health()
    assert health["healthy"] is False
    assert health["refused_now"] == 1
    refused = health["refused"][0]  # type: ignore[index]
    assert (refused["direction"], refused["subject"], refused["id"]) == ("up", UP, DISTRICT_FIRST)
    assert "another schema" in refused["reason"]

    assert schemas.run_once() == 0  # retried on the next pass, still refused, counted again
    metrics = CollectorRegistry()
    mirror = type("Mirror", (), {"plan": type("Plan", (), {"district": "yubei"})()})()
    catalogue = type("Catalogue", (), {"departments": {}})()
    metrics.register(FederationCollector(catalogue, mirror, schemas, lambda: MirrorHealth(False, {})))
    up, down = {"district": "yubei", "direction": "up"}, {"district": "yubei", "direction": "down"}
    assert metrics.get_sample_value("sharebus_federation_schema_import_refusals_total", up) == 2
    assert metrics.get_sample_value("sharebus_federation_schema_import_refusals_total", down) == 0
    assert metrics.get_sample_value("sharebus_federation_schemas_refused", up) == 1
    assert metrics.get_sample_value("sharebus_federation_id_ranges_disjoint", {"district": "yubei"}) == 1


def test_an_up_id_outside_the_districts_range_is_not_sent_unless_the_city_holds_it() -> None:
    """Before, the city refused only ids of its own range: a district (or two districts configured with one
    range) could import an id of another district's range first, and that district's schema under its own id
    was then refused for good."""
    city, district = store_from(1), store_from(DISTRICT_FIRST)
    other_district_id = 1 + 2 * ID_SPAN
    # A district registry listing (by import, here) an id of another district's range under its class's subject.
    district.import_version(UP, PENALTY, other_district_id)
    schemas = follower(city, district)
    schemas.run_once()
    assert city.subjects() == []
    assert "outside the sending registry's own range" in str(schemas.last_error)
    # The other district's own schema under its own id still imports.
    city.import_version("sharebus.src.501001001.000001-value", POPULATION, other_district_id)


def test_an_up_id_the_city_gave_the_district_goes_back_up_for_the_same_schema() -> None:
    """A district class whose schema copies a city projection reuses the city's id in the district's registry:
    that id is outside the district's range but the city holds it, so the city's registry decides (the same
    schema: imported), and the down direction goes on whatever it decides."""
    city, district = store_from(1), store_from(DISTRICT_FIRST)
    city_id = city.register(PROJECTION, POPULATION)
    schemas = follower(city, district)
    schemas.run_once()
    assert district.register(UP, POPULATION) == city_id
    later = city.register(f"{DOWN}101002001.000001-value", PENALTY)
    schemas.run_once()
    assert district.schema_by_id(later)
    # The follower sent it: whatever the city's registry answered is its own judgement, not a range refusal.
    reasons = [refusal["reason"] for refusal in schemas.health()["refused"]]  # type: ignore[attr-defined]
    assert not any("outside the sending registry's own range" in reason for reason in reasons)


def test_each_district_of_a_city_gets_its_own_id_range() -> None:
    """Before, ``sharebus run --districts`` gave every district ``1 + ID_SPAN``: two districts shared a range."""
    codes = ["yubei", "jiangbei", "shapingba"]
    firsts = {code: district_first_id(codes, code) for code in codes}
    assert firsts == {"jiangbei": 1 + ID_SPAN, "shapingba": 1 + 2 * ID_SPAN, "yubei": 1 + 3 * ID_SPAN}
    assert district_first_id([], "yubei") == 1 + ID_SPAN  # the demo's one district, as documented
