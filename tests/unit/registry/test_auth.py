"""The registry's authentication and authorisation, with the credential check injected (no broker)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sharebus_registry.api import create_app
from sharebus_registry.api_auth import RegistryGuard
from sharebus_registry.auth import (
    Authenticator,
    BasicCredentials,
    RegistryPolicy,
    TooManyAttempts,
    VerifierUnavailable,
    operation_of,
    parse_basic,
)
from tests.unit.registry.memory_log import make_store

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
INT = json.dumps({"schema": '"int"'})


class FakeBroker:
    """A verifier over a dict of passwords, counting its calls, as the broker would answer."""

    def __init__(self, passwords: dict[str, str]) -> None:
        self.passwords = dict(passwords)
        self.calls = 0

    def __call__(self, username: str, password: str) -> bool:
        self.calls += 1
        return self.passwords.get(username) == password


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# --- parsing -----------------------------------------------------------------------------------


def test_basic_headers_are_parsed_and_anything_else_is_no_credential() -> None:
    assert parse_basic(basic("sharebus.tax-levy", "p:w")) == BasicCredentials("sharebus.tax-levy", "p:w")
    assert parse_basic(None) is None
    assert parse_basic("Bearer abc") is None
    assert parse_basic("Basic !!!") is None
    assert parse_basic("Basic " + base64.b64encode(b"no-colon").decode()) is None
    assert parse_basic(basic("", "pw")) is None
    assert parse_basic(basic("user", "")) is None
    assert "p:w" not in repr(parse_basic(basic("u", "p:w")))  # never in logs by accident


# --- what a request does, and who may do it ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "route", "subject", "name"),
    [
        ("GET", "/subjects/{subject}/versions", "s", "Read"),
        ("GET", "/config", None, "Read"),
        ("POST", "/subjects/{subject}", "s", "Read"),  # lookup
        ("POST", "/compatibility/subjects/{subject}/versions", "s", "Read"),
        ("POST", "/subjects/{subject}/versions", "s", "Write"),
        ("DELETE", "/subjects/{subject}", "s", "Delete"),
        ("DELETE", "/subjects/{subject}/versions/{version}", "s", "Delete"),
        ("PUT", "/config", None, "AlterCompatibility"),
        ("PUT", "/config/{subject}", "s", "AlterCompatibility"),
        ("DELETE", "/config/{subject}", "s", "AlterCompatibility"),
        ("PUT", "/mode/{subject}", "s", "AlterMode"),
        ("PATCH", None, None, "Write"),  # unknown: a write, refused to readers
        ("POST", None, None, "Write"),
    ],
)
def test_operations(method: str, route: str | None, subject: str | None, name: str) -> None:
    assert operation_of(method, route, subject).name == name


def test_a_reader_sees_only_the_subjects_its_name_entitles_it_to() -> None:
    policy = RegistryPolicy.of(["sharebus-admin", "sharebus-router", "t-*-router"])
    subjects = [
        "sharebus.src.301001002.000001-value",
        "sharebus.src.301001002.000001-key",
        "sharebus.dlv.tax-levy.302001001.000001-value",
        "sharebus.dlv.tax-levy-2.302001001.000001-value",
        "sharebus.dlv.hrss-si.302001001.000001-value",
        "sharebus.dlv._public.302001001.000001-value",
        "t-1.src.301001002.000001-value",
        "t-1.dlv.tax-levy.302001001.000001-value",
        "people-value",
    ]

    def seen(username: str) -> list[int]:
        scope = policy.subjects_of(username)
        return [i for i, subject in enumerate(subjects) if scope(subject)]

    assert seen("sharebus-router") == seen("sharebus-admin") == seen("t-1-router") == list(range(len(subjects)))
    assert seen("sharebus.tax-levy") == [0, 2]  # the classes, and its own deliveries; not tax-levy-2's
    assert seen("t-1.tax-levy") == [6, 7]  # its own namespace's, from its name (a shared registry)
    assert seen("sharebus.hrss-si") == [0, 4]
    assert seen("sharebus-gateway") == seen("sharebus-portal") == [0, 1, 2, 3, 4, 5]  # the bus: its namespace
    assert seen("t-1-gateway") == [6, 7]
    for stranger in ("sharebus-mm2-yubei", "sharebus.tax-levy.302001001", "sharebus.", "nobody", "a.b.c"):
        assert seen(stranger) == [], stranger


def test_readers_read_and_only_writers_write() -> None:
    policy = RegistryPolicy.of(["sharebus-admin", "sharebus-router", "t-*-router"])
    read, write = operation_of("GET", "/subjects", None), operation_of("POST", "/subjects/{subject}/versions", "s")
    assert policy.allows("sharebus.tax-levy", read)
    assert not policy.allows("sharebus.tax-levy", write)
    assert policy.allows("sharebus-router", write)
    assert policy.allows("t-1234-router", write)
    assert not policy.allows("t-1234-gateway", write)


# --- the authenticator ---------------------------------------------------------------------------


def test_a_good_credential_is_verified_once_per_ttl_and_a_revoked_one_stops_after_it() -> None:
    broker, clock = FakeBroker({"alice": "right"}), FakeClock()
    auth = Authenticator(broker, ttl_s=30, failure_delay_s=0, clock=clock)

    async def scenario() -> None:
        good = BasicCredentials("alice", "right")
        assert await auth.authenticate(good)
        assert await auth.authenticate(good)
        assert broker.calls == 1
        broker.passwords.clear()  # revoked on the broker
        clock.now += 29
        assert await auth.authenticate(good)  # still within the TTL
        clock.now += 2
        assert not await auth.authenticate(good)
        assert broker.calls == 2

    asyncio.run(scenario())


def test_failures_are_not_cached_and_are_slowed_per_user() -> None:
    broker = FakeBroker({"alice": "right", "bob": "right"})
    auth = Authenticator(broker, failure_delay_s=0.2)

    async def scenario() -> None:
        started = time.monotonic()
        results = await asyncio.gather(*(auth.authenticate(BasicCredentials("alice", f"guess{i}")) for i in range(3)))
        assert results == [False, False, False]
        # One user's guesses run one after another, each followed by the delay.
        assert time.monotonic() - started >= 0.6
        assert broker.calls == 3
        # Another user is not held up by alice's guesses, and a right password right after works.
        started = time.monotonic()
        assert await auth.authenticate(BasicCredentials("bob", "right"))
        assert time.monotonic() - started < 0.2
        assert await auth.authenticate(BasicCredentials("alice", "right"))

    asyncio.run(scenario())


def test_a_flood_of_guesses_for_one_user_is_refused_without_asking_the_broker() -> None:
    broker = FakeBroker({"alice": "right"})
    auth = Authenticator(broker, failure_delay_s=0.2, max_pending_per_user=2)

    async def scenario() -> None:
        attempts = [auth.authenticate(BasicCredentials("alice", f"guess{i}")) for i in range(4)]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        assert [type(r) for r in results] == [bool, bool, TooManyAttempts, TooManyAttempts]
        assert broker.calls == 2

    asyncio.run(scenario())


def test_a_burst_with_one_good_credential_is_one_verification_not_a_refusal() -> None:
    # A router building routes sends dozens of requests at once when its cached credential expires.
    broker = FakeBroker({"router": "right"})
    auth = Authenticator(broker, failure_delay_s=0.2, max_pending_per_user=2)

    async def scenario() -> None:
        burst = [auth.authenticate(BasicCredentials("router", "right")) for _ in range(40)]
        assert await asyncio.gather(*burst) == [True] * 40
        assert broker.calls == 1
        # Guesses still queue per user and are refused past the limit, burst or not.
        guesses = [auth.authenticate(BasicCredentials("router", f"guess{i}")) for i in range(4)]
        results = await asyncio.gather(*guesses, return_exceptions=True)
        assert [type(r) for r in results] == [bool, bool, TooManyAttempts, TooManyAttempts]

    asyncio.run(scenario())


def test_the_cache_keeps_no_password() -> None:
    auth = Authenticator(FakeBroker({"alice": "s3cret-password"}), failure_delay_s=0)
    assert asyncio.run(auth.authenticate(BasicCredentials("alice", "s3cret-password")))
    assert all(b"s3cret-password" not in key for key in auth._cache)


# --- the door, over HTTP -------------------------------------------------------------------------


def unavailable(username: str, password: str) -> bool:
    raise VerifierUnavailable("down")


def serve(verify: Callable[[str, str], bool], scenario: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    guard = RegistryGuard(
        Authenticator(verify, failure_delay_s=0), RegistryPolicy.of(["sharebus-admin", "sharebus-router"])
    )

    async def main() -> None:
        async with TestClient(TestServer(create_app(make_store()[0], guard=guard))) as client:
            await scenario(client)

    asyncio.run(main())


BROKER = FakeBroker(
    {"sharebus-router": "r", "sharebus.tax-levy": "t", "sharebus.edu-status": "e", "sharebus-gateway": "g"}
)
ROUTER = {"Authorization": basic("sharebus-router", "r"), "Content-Type": MEDIA_TYPE}
SYSTEM = {"Authorization": basic("sharebus.tax-levy", "t"), "Content-Type": MEDIA_TYPE}
EDU = {"Authorization": basic("sharebus.edu-status", "e"), "Content-Type": MEDIA_TYPE}
GATEWAY = {"Authorization": basic("sharebus-gateway", "g"), "Content-Type": MEDIA_TYPE}
# A class's subject, and two consumers' projections of another class (what the router registers per grant).
SRC = "sharebus.src.301001002.000001-value"
TAX_GRANT = "sharebus.dlv.tax-levy.302001001.000001-value"
EDU_GRANT = "sharebus.dlv.edu-status.302001001.000001-value"
CONFIG = json.dumps({"compatibility": "NONE"})


async def call(client: TestClient[Any, Any], method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await client.request(method, path, **kwargs)
    return response.status, await response.json(content_type=None)


def test_without_a_credential_every_call_but_the_probe_is_401_in_confluents_shape() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert await call(client, "GET", "/") == (200, {})
        for method, path, body in [
            ("GET", "/subjects", None),
            ("POST", "/subjects/s/versions", INT),
            ("DELETE", "/subjects/s", None),
            ("PUT", "/config", CONFIG),
            ("GET", "/no/such/route", None),
        ]:
            response = await client.request(method, path, data=body, headers={"Content-Type": MEDIA_TYPE})
            assert response.status == 401, (method, path)
            assert response.headers["WWW-Authenticate"].startswith("Basic ")
            assert await response.json(content_type=None) == {"error_code": 401, "message": "Unauthorized"}
        wrong = {"Authorization": basic("sharebus-router", "wrong")}
        assert await call(client, "GET", "/subjects", headers=wrong) == (
            401,
            {"error_code": 401, "message": "Unauthorized"},
        )

    serve(BROKER, scenario)


def test_a_system_reads_but_may_not_register_delete_or_configure() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert await call(client, "POST", f"/subjects/{SRC}/versions", data=INT, headers=ROUTER) == (200, {"id": 1})
        assert (await call(client, "GET", f"/subjects/{SRC}/versions", headers=SYSTEM)) == (200, [1])
        assert (await call(client, "POST", f"/subjects/{SRC}", data=INT, headers=SYSTEM))[0] == 200  # lookup
        for method, path, body, denied in [
            ("POST", f"/subjects/{SRC}/versions", INT, f"Write on Subject: {SRC}"),
            ("DELETE", f"/subjects/{SRC}", None, f"Delete on Subject: {SRC}"),
            ("DELETE", f"/subjects/{SRC}/versions/1", None, f"Delete on Subject: {SRC}"),
            ("PUT", f"/config/{SRC}", CONFIG, f"AlterCompatibility on Subject: {SRC}"),
            ("PUT", "/config", CONFIG, "AlterCompatibility on the global configuration"),
        ]:
            status, body_json = await call(client, method, path, data=body, headers=SYSTEM)
            assert (status, body_json) == (
                403,
                {"error_code": 40301, "message": f"User is denied operation {denied}"},
            ), (method, path)
        assert (await call(client, "GET", f"/subjects/{SRC}/versions", headers=SYSTEM)) == (200, [1])  # unchanged

    serve(BROKER, scenario)


def test_a_bus_principal_may_do_all() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert (await call(client, "PUT", "/config/s", data=CONFIG, headers=ROUTER))[0] == 200
        assert (await call(client, "POST", "/subjects/s/versions", data=INT, headers=ROUTER))[0] == 200
        assert await call(client, "DELETE", "/subjects/s", headers=ROUTER) == (200, [1])

    serve(BROKER, scenario)


def test_an_unverifiable_credential_is_503_not_401() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        status, body = await call(client, "GET", "/subjects", headers=SYSTEM)
        assert (status, body["error_code"]) == (503, 50003)

    serve(unavailable, scenario)


def test_another_systems_grant_is_neither_listed_nor_readable_by_name() -> None:
    """A department's login learns nothing of the grants it is not party to: the gateway answers them 404."""
    not_found = {"error_code": 40401, "message": f"Subject '{TAX_GRANT}' not found."}

    async def scenario(client: TestClient[Any, Any]) -> None:
        ids = {}
        for subject, schema in ((SRC, '"int"'), (TAX_GRANT, '"string"'), (EDU_GRANT, '"long"')):
            document = json.dumps({"schema": schema})
            _, answer = await call(client, "POST", f"/subjects/{subject}/versions", data=document, headers=ROUTER)
            ids[subject] = answer["id"]
        assert await call(client, "GET", "/subjects", headers=EDU) == (200, [EDU_GRANT, SRC])
        _, documents = await call(client, "GET", "/schemas", headers=EDU)
        assert sorted(d["subject"] for d in documents) == [EDU_GRANT, SRC]
        tax_id = ids[TAX_GRANT]
        assert await call(client, "GET", f"/schemas/ids/{tax_id}/subjects", headers=EDU) == (200, [])
        assert await call(client, "GET", f"/schemas/ids/{tax_id}/versions", headers=EDU) == (200, [])
        # The schema by id names no subject, and a deserializer needs it for every record it decodes.
        assert await call(client, "GET", f"/schemas/ids/{tax_id}", headers=EDU) == (200, {"schema": '"string"'})
        for method, path, body in [
            ("GET", f"/subjects/{TAX_GRANT}/versions", None),
            ("GET", f"/subjects/{TAX_GRANT}/versions/latest", None),
            ("GET", f"/subjects/{TAX_GRANT}/versions/1/schema", None),
            ("GET", f"/subjects/{TAX_GRANT}/versions/1/referencedby", None),
            ("POST", f"/subjects/{TAX_GRANT}", json.dumps({"schema": '"string"'})),  # lookup
            ("POST", f"/compatibility/subjects/{TAX_GRANT}/versions/latest", json.dumps({"schema": '"string"'})),
            ("GET", f"/config/{TAX_GRANT}?defaultToGlobal=true", None),
        ]:
            assert await call(client, method, path, data=body, headers=EDU) == (404, not_found), (method, path)
        # The same answer for one that was never registered: the name decides, not the store.
        never = TAX_GRANT.replace("302001001.000001", "302001009.000001")
        assert (await call(client, "GET", f"/subjects/{never}/versions", headers=EDU))[1]["error_code"] == 40401
        # A write is refused as before, whether or not the subject exists.
        assert (await call(client, "POST", f"/subjects/{TAX_GRANT}/versions", data=INT, headers=EDU))[0] == 403
        # The parties to the grant, and the bus's own services, still read it.
        assert (await call(client, "GET", f"/subjects/{TAX_GRANT}/versions", headers=SYSTEM)) == (200, [1])
        assert (await call(client, "GET", "/subjects", headers=GATEWAY)) == (200, [EDU_GRANT, TAX_GRANT, SRC])
        assert (await call(client, "GET", f"/schemas/ids/{tax_id}/subjects", headers=GATEWAY)) == (200, [TAX_GRANT])

    serve(BROKER, scenario)
