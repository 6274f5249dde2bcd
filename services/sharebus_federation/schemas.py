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
from typing import Any

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


def _listed(client: httpx.Client, prefix: str) -> list[dict[str, Any]]:
    response = client.get("/schemas", params={"subjectPrefix": prefix})
    response.raise_for_status()
    documents = response.json()
    return [d for d in documents if isinstance(d, dict)] if isinstance(documents, list) else []


def sync_schemas(source: RegistryEnd, target: RegistryEnd, prefixes: tuple[str, ...]) -> int:
    """Imports every version under ``prefixes`` that the target lacks; returns how many it imported."""
    imported = 0
    try:
        with source.client() as src, target.client() as dst:
            for prefix in prefixes:
                held = {(d["subject"], int(d["id"])) for d in _listed(dst, prefix)}
                wanted = sorted(_listed(src, prefix), key=lambda d: (str(d["subject"]), int(d["version"])))
                for document in wanted:
                    subject, schema_id = str(document["subject"]), int(document["id"])
                    if (subject, schema_id) in held:
                        continue
                    body = {"schema": document["schema"], "schemaType": "AVRO", "id": schema_id}
                    answer = dst.post(
                        f"/subjects/{subject}/versions", json=body, headers={"Content-Type": _CONTENT_TYPE}
                    )
                    if answer.status_code >= 300:
                        raise SchemaImportError(
                            f"importing {subject} id {schema_id} into {target.url} failed "
                            f"(HTTP {answer.status_code}): {answer.text[:300]}"
                        )
                    held.add((subject, schema_id))
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
