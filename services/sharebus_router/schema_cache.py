"""Writer schemas by id, fetched from the registry once and parsed once."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import fastavro
import httpx

from sharebus_core.errors import SharebusError
from sharebus_core.registry_client import registry_http_auth

log = logging.getLogger(__name__)

_NEGATIVE_TTL_S = 30.0


class UnknownSchemaId(SharebusError, LookupError):
    pass


@dataclass(frozen=True, slots=True)
class WriterSchema:
    schema_id: int
    parsed: Any
    subjects: frozenset[str]


class SchemaCache:
    """A registry outage is not the record's fault: lookups retry until the registry answers,
    which holds the stream back instead of dead-lettering good records."""

    def __init__(self, registry_url: str, timeout_s: float, registry_auth: str | None) -> None:
        self._client = httpx.AsyncClient(
            base_url=registry_url.rstrip("/"), timeout=timeout_s, auth=registry_http_auth(registry_auth)
        )
        self._schemas: dict[int, WriterSchema] = {}
        self._unknown: dict[int, float] = {}

    def remember(self, schema_id: int, schema_text: str, subject: str) -> None:
        """Preloads a schema the caller registered itself, so the first record needs no lookup."""
        known = self._schemas.get(schema_id)
        if known is not None:
            self._schemas[schema_id] = WriterSchema(schema_id, known.parsed, known.subjects | {subject})
            return
        parsed = fastavro.parse_schema(json.loads(schema_text))
        self._schemas[schema_id] = WriterSchema(schema_id, parsed, frozenset({subject}))

    async def register(self, subject: str, schema_text: str) -> tuple[int, Any]:
        """Registers a projection schema; returns its id and parsed form.

        A consumer's projection changes whenever its grant's fields do, so its subject takes any
        schema (compatibility NONE): the subscriber decodes each record by its own schema id.
        """
        delay = 0.2
        while True:
            try:
                config = await self._client.put(f"/config/{subject}", json={"compatibility": "NONE"})
                config.raise_for_status()
                response = await self._client.post(f"/subjects/{subject}/versions", json={"schema": schema_text})
                response.raise_for_status()
                break
            except httpx.TransportError as exc:
                log.warning("schema registry unavailable (%s); retrying registration of %s", exc, subject)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        schema_id = int(response.json()["id"])
        self.remember(schema_id, schema_text, subject)
        return schema_id, self._schemas[schema_id].parsed

    def cached(self, schema_id: int) -> WriterSchema | None:
        return self._schemas.get(schema_id)

    async def get(self, schema_id: int) -> WriterSchema:
        found = self._schemas.get(schema_id)
        if found is not None:
            return found
        unknown_until = self._unknown.get(schema_id)
        if unknown_until is not None and unknown_until > time.monotonic():
            raise UnknownSchemaId(f"schema id {schema_id} is not in the registry")
        schema = await self._fetch(schema_id)
        self._schemas[schema_id] = schema
        return schema

    async def refresh(self, schema_id: int) -> WriterSchema:
        """Fetches an id again: a schema can be registered under more subjects after it was cached."""
        schema = await self._fetch(schema_id)
        self._schemas[schema_id] = schema
        return schema

    async def _fetch(self, schema_id: int) -> WriterSchema:
        delay = 0.2
        while True:
            try:
                schema_resp = await self._client.get(f"/schemas/ids/{schema_id}")
                if schema_resp.status_code == 404:
                    self._unknown[schema_id] = time.monotonic() + _NEGATIVE_TTL_S
                    raise UnknownSchemaId(f"schema id {schema_id} is not in the registry")
                schema_resp.raise_for_status()
                versions_resp = await self._client.get(f"/schemas/ids/{schema_id}/versions")
                versions_resp.raise_for_status()
                break
            except httpx.HTTPError as exc:
                log.warning("schema registry unavailable (%s); retrying schema id %d in %.1fs", exc, schema_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        parsed = fastavro.parse_schema(json.loads(schema_resp.json()["schema"]))
        subjects = frozenset(v["subject"] for v in versions_resp.json())
        return WriterSchema(schema_id, parsed, subjects)

    async def close(self) -> None:
        await self._client.aclose()
