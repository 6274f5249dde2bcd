"""The HTTP edge: Confluent's media type and error bodies, request parsing, and error translation."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from sharebus_registry.auth import EVERY_SUBJECT, SubjectScope
from sharebus_registry.errors import (
    BadRequest,
    IncompatibleSchema,
    NotFound,
    RegistryError,
    Unprocessable,
    UnprocessableEntity,
    UnsupportedMediaType,
)
from sharebus_registry.store import SchemaStore

log = logging.getLogger(__name__)

STORE = web.AppKey("store", SchemaStore)
# The subjects the caller may see, set by the guard; absent when there is no guard (every subject).
VISIBLE = web.RequestKey("visible_subjects", SubjectScope)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPTED_BODY_TYPES = frozenset(
    {
        CONTENT_TYPE,
        "application/vnd.schemaregistry+json",
        "application/json",
        # What aiohttp reports when a request has no Content-Type at all.
        "application/octet-stream",
    }
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def store_of(request: web.Request) -> SchemaStore:
    return request.app[STORE]


def visible_of(request: web.Request) -> SubjectScope:
    scope: SubjectScope = request.get(VISIBLE, EVERY_SUBJECT)
    return scope


def json_response(document: object, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(document, ensure_ascii=False), status=status, content_type=CONTENT_TYPE, charset="utf-8"
    )


def schema_text_response(text: str) -> web.Response:
    """A schema itself as the body (the ``.../schema`` endpoints), exactly as stored."""
    return web.Response(text=text, content_type=CONTENT_TYPE, charset="utf-8")


def error_response(status: int, error_code: int, message: str) -> web.Response:
    return json_response({"error_code": error_code, "message": message}, status=status)


def http_status(error: RegistryError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, IncompatibleSchema):
        return 409
    if isinstance(error, Unprocessable):
        return 422
    if isinstance(error, BadRequest):
        return 400
    if isinstance(error, UnsupportedMediaType):
        return 415
    return 500


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Confluent error body; nothing leaves as a traceback."""
    try:
        return await handler(request)
    except RegistryError as exc:
        return error_response(http_status(exc), exc.error_code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.status, f"HTTP {exc.status} {exc.reason}")
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, 500, "Internal Server Error")


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or the 415/400/422 Confluent would answer."""
    if request.content_type not in ACCEPTED_BODY_TYPES:
        raise UnsupportedMediaType(
            f"HTTP 415 Unsupported Media Type: send the body as {CONTENT_TYPE} or application/json, "
            f"not {request.content_type}"
        )
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("The request body is empty; expected a JSON object")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UnprocessableEntity(f"The request body must be a JSON object, not {type(document).__name__}")
    return document


def flag(request: web.Request, name: str) -> bool:
    # As Java's Boolean.valueOf: only "true", in any case, is true (the Python client sends "True").
    return request.query.get(name, "").strip().lower() == "true"


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Query parameter {name!r} must be an integer, not {raw!r}") from None


def page(request: web.Request, items: Sequence[T]) -> list[T]:
    """Confluent's ``offset``/``limit`` pagination; a limit of zero or less means all."""
    offset = max(0, _int_param(request, "offset", 0))
    limit = _int_param(request, "limit", -1)
    selected = list(items[offset:])
    return selected[:limit] if limit > 0 else selected


def int_segment(request: web.Request, name: str) -> int:
    # The route pattern already allows digits only.
    return int(request.match_info[name])
