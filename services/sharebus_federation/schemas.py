"""Schemas carried with the data: the receiving registry imports the sending one's, ids kept.

Each bus's registry hands out ids of its own range (``SHAREBUS_REGISTRY_FIRST_ID``), so an id means
one schema on every bus. The follower copies the federated subjects (up: the source subjects of the
federated classes; down: the city's projection subjects of the district's systems) from the registry
of the sending bus into the receiving one with the Confluent import form (``"id"`` in the body).

Fail closed: a record whose id has not been imported yet resolves nowhere, so the receiving router
dead-letters it (``unknown_schema``, replayable) and a subscriber refuses to decode it. The follower
that runs this every second, both directions, is ``sharebus_federation.follower.SchemaFollower``.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import TypeGuard
from urllib.parse import quote

import httpx

from sharebus_core.errors import SharebusError
from sharebus_core.registry_client import registry_http_auth

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


def whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _version(document: object, prefix: str) -> _Version:
    """One entry of a peer registry's listing, checked: the peer is another bus, not this one's code."""
    if not isinstance(document, dict):
        raise SchemaImportError(f"the listing under {prefix!r} holds {str(document)[:100]}, not a schema version")
    subject, version, schema_id, schema = (document.get(k) for k in ("subject", "version", "id", "schema"))
    if not (isinstance(subject, str) and isinstance(schema, str) and whole(version) and whole(schema_id)):
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


@dataclass(frozen=True, slots=True)
class Refusal:
    """One version the receiving side would not take (or the follower would not send) in a pass."""

    subject: str
    version: int
    schema_id: int
    reason: str


@dataclass(slots=True)
class SyncResult:
    imported: int = 0
    refused: list[Refusal] = field(default_factory=list)


def _refusal(dst: httpx.Client, version: _Version, own_ids: Container[int] | None) -> str | None:
    """Why ``version`` is not sent, or None. An id outside the sender's own range goes only where the
    receiver already holds it (a schema the sender itself imported, e.g. a class whose schema copies a
    projection): otherwise a sender could claim an id of another bus's range first and lock that bus's
    schema out for good."""
    if own_ids is None or version.schema_id in own_ids:
        return None
    held = dst.get(f"/schemas/ids/{version.schema_id}")
    if held.status_code == 200:
        return None  # the receiver judges: the same schema, or a refusal (an id never means two schemas)
    return (
        f"id {version.schema_id} is outside the sending registry's own range and {dst.base_url} does not hold it "
        f"(HTTP {held.status_code})"
    )


def _import(dst: httpx.Client, version: _Version) -> str | None:
    """Imports one version; the receiver's refusal, or None."""
    body = {"schema": version.schema, "schemaType": "AVRO", "id": version.schema_id}
    # One path segment, escaped: a subject named ".../../<another subject>" would otherwise be
    # normalised by the client into a write to that other subject, with this bus's writer credential.
    path = f"/subjects/{quote(version.subject, safe='')}/versions"
    answer = dst.post(path, json=body, headers={"Content-Type": _CONTENT_TYPE})
    if answer.status_code >= 300:
        return f"{dst.base_url} refused it (HTTP {answer.status_code}): {answer.text[:300]}"
    return None


def sync_schemas(
    source: RegistryEnd, target: RegistryEnd, prefixes: tuple[str, ...], own_ids: Container[int] | None = None
) -> SyncResult:
    """Imports every version under ``prefixes`` that the target lacks; what it imported and what was refused.

    A refused version is reported and skipped, never the end of the pass: every other version is still
    imported, and the refused one is tried again on the next call. ``own_ids``: the ids the source hands
    out itself (None: any id). ``SchemaImportError`` when a registry cannot be reached or answers what a
    registry would not (nothing can be judged then).
    """
    result = SyncResult()
    try:
        with source.client() as src, target.client() as dst:
            for prefix in prefixes:
                held = {(v.subject, v.schema_id) for v in _listed(dst, prefix)}
                for version in sorted(_listed(src, prefix), key=lambda v: (v.subject, v.version)):
                    if (version.subject, version.schema_id) in held:
                        continue
                    reason = _refusal(dst, version, own_ids) or _import(dst, version)
                    if reason is not None:
                        result.refused.append(Refusal(version.subject, version.version, version.schema_id, reason))
                        continue
                    held.add((version.subject, version.schema_id))
                    result.imported += 1
    except httpx.HTTPError as exc:
        raise SchemaImportError(f"schema import from {source.url} to {target.url} failed: {exc}") from exc
    return result


__all__ = ["Refusal", "RegistryEnd", "SchemaImportError", "SyncResult", "sync_schemas", "whole"]
