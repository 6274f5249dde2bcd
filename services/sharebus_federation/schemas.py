"""Schemas carried with the data: the receiving registry imports the sending one's, ids kept.

Each bus's registry hands out ids of its own range (``SHAREBUS_REGISTRY_FIRST_ID``), so an id means
one schema on every bus. The follower copies the federated subjects (up: the source subjects of the
federated classes; down: the city's projection subjects of the district's systems) from the registry
of the sending bus into the receiving one with the Confluent import form (``"id"`` in the body).

Fail closed: a record whose id has not been imported yet resolves nowhere, so the receiving router
dead-letters it (``unknown_schema``, replayable) and a subscriber refuses to decode it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import quote

import httpx

from sharebus_core.errors import SharebusError
from sharebus_core.registry_client import registry_http_auth

log = logging.getLogger(__name__)
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaImportError(SharebusError, RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class RegistryEnd:
    url: str
    auth: str | None  # ``user:password`` of a principal the registry accepts (a writer, for the receiver)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url.rstrip("/"), auth=registry_http_auth(self.auth), timeout=30.0)


@dataclass(frozen=True, slots=True)
class _Version:
    subject: str
    version: int
    schema_id: int
    schema: str


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _version(document: object, prefix: str) -> _Version:
    """One entry of a peer registry's listing, checked: the peer is another bus, not this one's code."""
    if not isinstance(document, dict):
        raise SchemaImportError(f"the listing under {prefix!r} holds {str(document)[:100]}, not a schema version")
    subject, version, schema_id, schema = (document.get(k) for k in ("subject", "version", "id", "schema"))
    if not (isinstance(subject, str) and isinstance(schema, str) and _whole(version) and _whole(schema_id)):
        raise SchemaImportError(f"the listing under {prefix!r} holds a malformed version: {str(document)[:300]}")
    if not subject.startswith(prefix):
        raise SchemaImportError(f"the listing under {prefix!r} holds subject {subject!r}, which is not under it")
    return _Version(subject, version, schema_id, schema)


def _listed(client: httpx.Client, prefix: str) -> list[_Version]:
    response = client.get("/schemas", params={"subjectPrefix": prefix})
    response.raise_for_status()
    try:
        documents = response.json()
    except ValueError as exc:
        raise SchemaImportError(f"{client.base_url} answered the listing under {prefix!r} with no JSON") from exc
    if not isinstance(documents, list):
        raise SchemaImportError(f"{client.base_url} answered the listing under {prefix!r} with no list")
    return [_version(d, prefix) for d in documents]


def _import(dst: httpx.Client, version: _Version) -> None:
    body = {"schema": version.schema, "schemaType": "AVRO", "id": version.schema_id}
    # One path segment, escaped: a subject named ".../../<another subject>" would otherwise be
    # normalised by the client into a write to that other subject, with this bus's writer credential.
    path = f"/subjects/{quote(version.subject, safe='')}/versions"
    answer = dst.post(path, json=body, headers={"Content-Type": _CONTENT_TYPE})
    if answer.status_code >= 300:
        raise SchemaImportError(
            f"importing {version.subject} id {version.schema_id} into {dst.base_url} failed "
            f"(HTTP {answer.status_code}): {answer.text[:300]}"
        )


def sync_schemas(source: RegistryEnd, target: RegistryEnd, prefixes: tuple[str, ...]) -> int:
    """Imports every version under ``prefixes`` that the target lacks; returns how many it imported.

    ``SchemaImportError`` when a registry cannot be reached or answers what a registry would not.
    """
    imported = 0
    try:
        with source.client() as src, target.client() as dst:
            for prefix in prefixes:
                held = {(v.subject, v.schema_id) for v in _listed(dst, prefix)}
                for version in sorted(_listed(src, prefix), key=lambda v: (v.subject, v.version)):
                    if (version.subject, version.schema_id) in held:
                        continue
                    _import(dst, version)
                    held.add((version.subject, version.schema_id))
                    imported += 1
    except httpx.HTTPError as exc:
        raise SchemaImportError(f"schema import from {source.url} to {target.url} failed: {exc}") from exc
    return imported


class SchemaFollower:
    """Runs ``sync_schemas`` for both directions every ``every_s`` seconds, in a thread of its own."""

    def __init__(
        self, directions: list[tuple[RegistryEnd, RegistryEnd, tuple[str, ...]]], every_s: float = 1.0
    ) -> None:
        self.directions = directions
        self.every_s = every_s
        self.imported = 0
        self.passes = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schema-follower", daemon=True)

    def run_once(self) -> int:
        count = sum(sync_schemas(source, target, prefixes) for source, target, prefixes in self.directions)
        self.imported += count
        self.passes += 1
        return count

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except SchemaImportError as exc:
                # Kept, not raised: a registry that is away now is retried on the next pass.
                self.last_error = str(exc)
                log.warning("%s", exc)
            self._stop.wait(self.every_s)

    def start(self) -> SchemaFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


__all__ = ["RegistryEnd", "SchemaFollower", "SchemaImportError", "sync_schemas"]
