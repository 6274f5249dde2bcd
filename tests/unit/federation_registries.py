"""Registries for the schema follower's tests: a real ``SchemaStore`` behind the HTTP calls the follower makes."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import httpx

from sharebus_federation.schemas import RegistryEnd
from sharebus_registry.api_support import http_status
from sharebus_registry.errors import RegistryError
from sharebus_registry.schemas import parse
from sharebus_registry.state import ID_SPAN, RegistryState
from sharebus_registry.store import SchemaStore
from tests.unit.registry.memory_log import MemoryLog

_BY_ID = re.compile(r"/schemas/ids/(\d+)$")


def store_from(first_id: int) -> SchemaStore:
    state = RegistryState(first_id)
    return SchemaStore(state, MemoryLog(state))


class StoreEnd(RegistryEnd):
    """A registry end answering as the registry's HTTP API does, over ``store``: the listing, the import
    form, a schema by id and the id range (``GET /v1/metadata/id-range``)."""

    store: SchemaStore

    def __init__(self, url: str, store: SchemaStore) -> None:
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "auth", None)
        object.__setattr__(self, "store", store)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, transport=httpx.MockTransport(self._answer))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        store, path = self.store, request.url.path
        try:
            if request.method == "POST":
                subject = unquote(request.url.raw_path.decode().split("/")[2])
                body = json.loads(request.content)
                return httpx.Response(
                    200, json={"id": store.import_version(subject, parse(body["schema"]), body["id"])}
                )
            if path == "/v1/metadata/id-range":
                first = store.state.first_id
                return httpx.Response(200, json={"first_id": first, "last_id": first + ID_SPAN - 1})
            by_id = _BY_ID.match(path)
            if by_id:
                return httpx.Response(200, json={"schema": store.schema_by_id(int(by_id.group(1)))})
            prefix = request.url.params.get("subjectPrefix", "")
            docs = [
                {"subject": v.subject, "version": v.version, "id": v.schema_id, "schema": v.schema}
                for s in store.subjects()
                if s.startswith(prefix)
                for v in store.state.versions(s)
            ]
            return httpx.Response(200, json=docs)
        except RegistryError as exc:
            return httpx.Response(http_status(exc), json={"error_code": exc.error_code, "message": exc.message})
