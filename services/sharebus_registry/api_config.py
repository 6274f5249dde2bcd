"""Compatibility configuration, compatibility tests, the (read-only) mode endpoints and this registry's id range."""

from __future__ import annotations

import asyncio

from aiohttp import web

from sharebus_registry.api_support import flag, json_response, read_object, store_of
from sharebus_registry.compat import parse_level
from sharebus_registry.schemas import parse_submitted
from sharebus_registry.state import ID_SPAN
from sharebus_registry.store import VersionSpec, parse_version

# Not Confluent's: the federation service reads both buses' ranges and refuses to run when they overlap
# (docs/federation.md). Behind the guard like every path but ``/``: any authenticated principal reads it.
ID_RANGE_PATH = "/v1/metadata/id-range"


def add_config_routes(app: web.Application) -> None:
    app.router.add_get("/config", get_global_level)
    app.router.add_put("/config", put_global_level)
    app.router.add_delete("/config", delete_global_level)
    app.router.add_get("/config/{subject}", get_subject_level)
    app.router.add_put("/config/{subject}", put_subject_level)
    app.router.add_delete("/config/{subject}", delete_subject_level)
    app.router.add_post("/compatibility/subjects/{subject}/versions", test_against_all)
    app.router.add_post("/compatibility/subjects/{subject}/versions/{version}", test_against_version)
    app.router.add_get("/mode", mode)
    app.router.add_get("/mode/{subject}", mode)
    app.router.add_get(ID_RANGE_PATH, id_range)


async def get_global_level(request: web.Request) -> web.Response:
    return json_response({"compatibilityLevel": store_of(request).get_level(None).value})


async def get_subject_level(request: web.Request) -> web.Response:
    level = store_of(request).get_level(request.match_info["subject"], flag(request, "defaultToGlobal"))
    return json_response({"compatibilityLevel": level.value})


async def put_global_level(request: web.Request) -> web.Response:
    return await _put_level(request, None)


async def put_subject_level(request: web.Request) -> web.Response:
    return await _put_level(request, request.match_info["subject"])


async def _put_level(request: web.Request, subject: str | None) -> web.Response:
    body = await read_object(request)
    # The client's ServerConfig may send either spelling.
    level = parse_level(body.get("compatibility", body.get("compatibilityLevel")))
    stored = await asyncio.to_thread(store_of(request).set_level, subject, level)
    return json_response({"compatibility": stored.value})


async def delete_global_level(request: web.Request) -> web.Response:
    old = await asyncio.to_thread(store_of(request).delete_level, None)
    return json_response({"compatibilityLevel": old.value})


async def delete_subject_level(request: web.Request) -> web.Response:
    old = await asyncio.to_thread(store_of(request).delete_level, request.match_info["subject"])
    return json_response({"compatibilityLevel": old.value})


async def test_against_all(request: web.Request) -> web.Response:
    return await _test(request, None)


async def test_against_version(request: web.Request) -> web.Response:
    return await _test(request, parse_version(request.match_info["version"]))


async def _test(request: web.Request, version: VersionSpec | None) -> web.Response:
    body = await read_object(request)
    schema = parse_submitted(body.get("schema"), body.get("schemaType"), body.get("references"))
    result = await asyncio.to_thread(
        store_of(request).test_compatibility, request.match_info["subject"], schema, version
    )
    document: dict[str, object] = {"is_compatible": result.is_compatible}
    if flag(request, "verbose"):
        document["messages"] = list(result.messages)
    return json_response(document)


async def mode(request: web.Request) -> web.Response:
    # Modes (IMPORT, READONLY) are not supported: the registry is always read-write.
    return json_response({"mode": "READWRITE"})


async def id_range(request: web.Request) -> web.Response:
    """The ids this registry hands out itself (``SHAREBUS_REGISTRY_FIRST_ID``): ``first_id`` .. ``last_id``."""
    first = store_of(request).state.first_id
    return json_response({"first_id": first, "last_id": first + ID_SPAN - 1})
