"""The HTTP edge over an in-memory log (no broker): error translation and the 500 path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from sharebus_registry.api import create_app
from sharebus_registry.errors import StoreTimeout
from sharebus_registry.records import Record
from sharebus_registry.state import RegistryState
from sharebus_registry.store import SchemaStore
from tests.unit.registry.memory_log import make_store

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
HEADERS = {"Content-Type": MEDIA_TYPE}
INT = json.dumps({"schema": '"int"'})


def run(store: SchemaStore, scenario: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(create_app(store, guard=None))) as client:
            await scenario(client)

    asyncio.run(main())


async def answer(response: Any) -> tuple[int, Any]:
    assert response.headers["Content-Type"].startswith(MEDIA_TYPE)
    return response.status, await response.json(content_type=None)


def test_registry_errors_become_confluent_bodies() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert await answer(await client.post("/subjects/s/versions", data=INT, headers=HEADERS)) == (200, {"id": 1})
        status, body = await answer(await client.get("/subjects/s/versions/2"))
        assert (status, body["error_code"]) == (404, 40402)
        status, body = await answer(await client.get("/subjects/s/versions/zero"))
        assert (status, body["error_code"]) == (422, 42202)
        status, body = await answer(await client.delete("/subjects/s?permanent=true"))
        assert (status, body["error_code"]) == (404, 40405)
        status, body = await answer(await client.post("/subjects/s/versions", data='"long"', headers=HEADERS))
        assert (status, body["error_code"]) == (422, 422)

    run(make_store()[0], scenario)


class BrokenLog:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def append(self, records: Sequence[Record]) -> None:
        raise self.error


def test_a_log_timeout_answers_50002() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        status, body = await answer(await client.post("/subjects/s/versions", data=INT, headers=HEADERS))
        assert (status, body["error_code"]) == (500, 50002)
        assert "timed out" in body["message"]

    run(SchemaStore(RegistryState(), BrokenLog(StoreTimeout("Operation timed out"))), scenario)


def test_an_unexpected_failure_answers_500_without_a_traceback() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        status, body = await answer(
            await client.put("/config", data=json.dumps({"compatibility": "NONE"}), headers=HEADERS)
        )
        assert (status, body) == (500, {"error_code": 500, "message": "Internal Server Error"})

    run(SchemaStore(RegistryState(), BrokenLog(RuntimeError("boom"))), scenario)
