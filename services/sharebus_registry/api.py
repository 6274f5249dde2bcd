"""The Confluent Schema Registry REST API (the Avro subset) over a ``SchemaStore``.

Reads answer from memory on the event loop; writes and compatibility checks run in worker threads,
since a write blocks until the log has applied it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from sharebus_registry.api_auth import RegistryGuard, guard_middleware
from sharebus_registry.api_config import add_config_routes
from sharebus_registry.api_support import (
    STORE,
    error_middleware,
    flag,
    int_segment,
    json_response,
    page,
    read_object,
    schema_text_response,
    store_of,
    visible_of,
)
from sharebus_registry.errors import UnprocessableEntity
from sharebus_registry.schemas import SUPPORTED_TYPES, ParsedSchema, parse_submitted
from sharebus_registry.state import RegisteredVersion
from sharebus_registry.store import SchemaStore, parse_version

_MAX_BODY_BYTES = 16 * 1024 * 1024
_ID = r"{schema_id:\d+}"
# Registrations wait in threads while the store writes them in groups (SchemaStore.register); the
# default executor's few threads would cap a group at a handful, so they get threads of their own.
_REGISTRATIONS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="registry-register")


def create_app(store: SchemaStore, *, guard: RegistryGuard | None) -> web.Application:
    """``guard`` checks every request's credential and permission; None only for in-memory tests and
    the plaintext debugging mode, where there is no credential to check."""
    # The guard runs first: an unauthenticated body is never read, let alone parsed.
    middlewares = ([guard_middleware(guard)] if guard is not None else []) + [error_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=_MAX_BODY_BYTES)
    app[STORE] = store
    app.router.add_get("/", root)
    app.router.add_get("/schemas", list_schemas)
    app.router.add_get("/schemas/types", schema_types)
    app.router.add_get(f"/schemas/ids/{_ID}", schema_by_id)
    app.router.add_get(f"/schemas/ids/{_ID}/schema", raw_schema_by_id)
    app.router.add_get(f"/schemas/ids/{_ID}/versions", versions_of_id)
    app.router.add_get(f"/schemas/ids/{_ID}/subjects", subjects_of_id)
    app.router.add_get("/subjects", list_subjects)
    app.router.add_post("/subjects/{subject}", lookup)
    app.router.add_delete("/subjects/{subject}", delete_subject)
    app.router.add_get("/subjects/{subject}/versions", list_versions)
    app.router.add_post("/subjects/{subject}/versions", register)
    app.router.add_get("/subjects/{subject}/versions/{version}", get_version)
    app.router.add_delete("/subjects/{subject}/versions/{version}", delete_version)
    app.router.add_get("/subjects/{subject}/versions/{version}/schema", get_raw_version)
    app.router.add_get("/subjects/{subject}/versions/{version}/referencedby", referenced_by)
    add_config_routes(app)
    return app


def _version_document(entry: RegisteredVersion) -> dict[str, object]:
    return {"subject": entry.subject, "version": entry.version, "id": entry.schema_id, "schema": entry.schema}


async def _submitted_schema(request: web.Request) -> ParsedSchema:
    body = await read_object(request)
    return parse_submitted(body.get("schema"), body.get("schemaType"), body.get("references"))


# --- root and schemas by id ------------------------------------------------------------------


async def root(request: web.Request) -> web.Response:
    return json_response({})


async def schema_types(request: web.Request) -> web.Response:
    return json_response(list(SUPPORTED_TYPES))


async def list_schemas(request: web.Request) -> web.Response:
    store = store_of(request)
    prefix = request.query.get("subjectPrefix", "")
    include_deleted = flag(request, "deleted")
    latest_only = flag(request, "latestOnly")
    visible = visible_of(request)
    documents = []
    for subject in store.subjects(include_deleted):
        if not subject.startswith(prefix) or not visible(subject):
            continue
        versions = store.state.versions(subject, include_deleted)
        documents += [_version_document(entry) for entry in (versions[-1:] if latest_only else versions)]
    return json_response(page(request, documents))


async def schema_by_id(request: web.Request) -> web.Response:
    # Query parameters such as subject, format and fetchMaxId change nothing for Avro without contexts.
    return json_response({"schema": store_of(request).schema_by_id(int_segment(request, "schema_id"))})


async def raw_schema_by_id(request: web.Request) -> web.Response:
    text = store_of(request).schema_by_id(int_segment(request, "schema_id"))
    return schema_text_response(text)


def _id_versions(request: web.Request) -> list[RegisteredVersion]:
    entries = store_of(request).versions_of_id(int_segment(request, "schema_id"), flag(request, "deleted"))
    subject = request.query.get("subject")
    visible = visible_of(request)
    return [entry for entry in entries if (subject is None or entry.subject == subject) and visible(entry.subject)]


async def versions_of_id(request: web.Request) -> web.Response:
    pairs = [{"subject": entry.subject, "version": entry.version} for entry in _id_versions(request)]
    return json_response(page(request, pairs))


async def subjects_of_id(request: web.Request) -> web.Response:
    subjects = sorted({entry.subject for entry in _id_versions(request)})
    return json_response(page(request, subjects))


# --- subjects --------------------------------------------------------------------------------


async def list_subjects(request: web.Request) -> web.Response:
    subjects = store_of(request).subjects(flag(request, "deleted"), flag(request, "deleted_only"))
    prefix = request.query.get("subjectPrefix", "")
    visible = visible_of(request)
    return json_response(page(request, [s for s in subjects if s.startswith(prefix) and visible(s)]))


async def list_versions(request: web.Request) -> web.Response:
    versions = store_of(request).versions(
        request.match_info["subject"], flag(request, "deleted"), flag(request, "deleted_only")
    )
    return json_response(page(request, versions))


async def get_version(request: web.Request) -> web.Response:
    entry = store_of(request).get_version(
        request.match_info["subject"], parse_version(request.match_info["version"]), flag(request, "deleted")
    )
    return json_response(_version_document(entry))


async def get_raw_version(request: web.Request) -> web.Response:
    entry = store_of(request).get_version(
        request.match_info["subject"], parse_version(request.match_info["version"]), flag(request, "deleted")
    )
    return schema_text_response(entry.schema)


async def referenced_by(request: web.Request) -> web.Response:
    # References are not supported, so nothing can reference a version; it must exist, though.
    store_of(request).get_version(request.match_info["subject"], parse_version(request.match_info["version"]))
    return json_response([])


async def register(request: web.Request) -> web.Response:
    # ``normalize`` is accepted and needs no action: identity is always the canonical form.
    body = await read_object(request)
    schema = parse_submitted(body.get("schema"), body.get("schemaType"), body.get("references"))
    store = store_of(request)
    subject = request.match_info["subject"]
    loop = asyncio.get_running_loop()
    wanted = body.get("id")
    if wanted is not None:
        # Confluent's import form: the schema keeps the id another bus's registry gave it (federation).
        if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 1:
            raise UnprocessableEntity("id must be a positive integer")
        schema_id = await loop.run_in_executor(_REGISTRATIONS, store.import_version, subject, schema, wanted)
    else:
        schema_id = await loop.run_in_executor(_REGISTRATIONS, store.register, subject, schema)
    return json_response({"id": schema_id})


async def lookup(request: web.Request) -> web.Response:
    schema = await _submitted_schema(request)
    entry = store_of(request).lookup(request.match_info["subject"], schema, flag(request, "deleted"))
    return json_response(_version_document(entry))


async def delete_subject(request: web.Request) -> web.Response:
    versions = await asyncio.to_thread(
        store_of(request).delete_subject, request.match_info["subject"], flag(request, "permanent")
    )
    return json_response(versions)


async def delete_version(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    version = parse_version(request.match_info["version"])
    deleted = await asyncio.to_thread(store_of(request).delete_version, subject, version, flag(request, "permanent"))
    return json_response(deleted)
