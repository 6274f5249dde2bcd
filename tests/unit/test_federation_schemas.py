"""The schema follower copies only the federated subjects, and a peer registry's odd answer is an error it reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sharebus_federation.schemas import RegistryEnd, SchemaImportError, sync_schemas

UP = "sharebus.src.301001001.000009-value"
SCHEMA = '{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}'


@dataclass(frozen=True)
class FakeRegistry(RegistryEnd):
    """A registry answering ``GET /schemas`` with ``listing`` and recording every POST's path."""

    listing: Any = None
    posted: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        def answer(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                self.posted.append(request.url.raw_path.decode())
                return httpx.Response(200, json={"id": json.loads(request.content)["id"]})
            raw = self.listing if isinstance(self.listing, bytes) else json.dumps(self.listing).encode()
            return httpx.Response(200, content=raw)

        return httpx.Client(base_url=self.url, transport=httpx.MockTransport(answer))


def registry(listing: Any) -> FakeRegistry:
    return FakeRegistry("http://registry.test", None, listing)


def version(subject: str, schema_id: int = 500_001) -> dict[str, Any]:
    return {"subject": subject, "version": 1, "id": schema_id, "schema": SCHEMA}


def test_a_federated_subject_is_imported_with_its_id() -> None:
    source, target = registry([version(UP)]), registry([])
    assert sync_schemas(source, target, (UP,)).imported == 1
    assert target.posted == [f"/subjects/{UP}/versions"]


def test_a_subject_name_never_climbs_out_to_another_subject_of_the_receiving_registry() -> None:
    # A district's registry lists a "federated" subject whose name walks up to a city class's subject.
    climbing = f"{UP}/../sharebus.src.301001001.000001-value"
    source, target = registry([version(climbing)]), registry([])
    sync_schemas(source, target, (UP,))
    assert target.posted == ["/subjects/" + climbing.replace("/", "%2F") + "/versions"]


@pytest.mark.parametrize(
    "listing",
    [
        b"<html>proxy error</html>",  # not JSON, though 200
        [{"subject": UP, "version": 1, "schema": SCHEMA}],  # no id
        [{"subject": UP, "version": "one", "id": 7, "schema": SCHEMA}],
        [version("sharebus.src.301001001.000001-value")],  # outside the prefix asked for
    ],
)
def test_an_odd_listing_is_a_schema_import_error_not_a_crash(listing: Any) -> None:
    source, target = registry(listing), registry([])
    with pytest.raises(SchemaImportError):
        sync_schemas(source, target, (UP,))
    assert target.posted == []
