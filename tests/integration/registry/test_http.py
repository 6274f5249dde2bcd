"""The REST surface byte by byte: media type, error bodies, bad requests, the endpoints the client skips."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.integration.registry.schemas import V1, V2
from tests.support.registry import RegistryProcess

pytestmark = pytest.mark.broker

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


@pytest.fixture
def http(registry: RegistryProcess) -> Iterator[httpx.Client]:
    with registry.http(headers={"Content-Type": MEDIA_TYPE}, timeout=30.0) as session:
        yield session


def register(http: httpx.Client, subject: str, schema: str | None) -> httpx.Response:
    return http.post(f"/subjects/{quote(subject, safe='')}/versions", json={"schema": schema})


def test_root_types_and_mode(http: httpx.Client) -> None:
    root = http.get("/")
    assert (root.status_code, root.json()) == (200, {})
    assert root.headers["content-type"].startswith(MEDIA_TYPE)
    assert http.get("/schemas/types").json() == ["AVRO"]
    assert http.get("/mode").json() == {"mode": "READWRITE"}


def test_register_and_the_raw_schema_endpoints(http: httpx.Client) -> None:
    assert register(http, "people-value", V1.schema_str).json() == {"id": 1}
    normalized = http.post("/subjects/people-value/versions?normalize=true", json={"schema": V2.schema_str})
    assert normalized.json() == {"id": 2}
    assert json.loads(http.get("/schemas/ids/2/schema").text) == json.loads(V2.schema_str or "")
    assert json.loads(http.get("/subjects/people-value/versions/1/schema").text) == json.loads(V1.schema_str or "")
    assert http.get("/schemas/ids/1", params={"subject": "people-value", "format": "x"}).status_code == 200
    assert http.get("/schemas/ids/2/versions").json() == [{"subject": "people-value", "version": 2}]
    assert http.get("/subjects/people-value/versions/1/referencedby").json() == []
    latest = http.get("/subjects/people-value/versions/-1").json()
    assert {key: latest[key] for key in ("subject", "version", "id")} == {
        "subject": "people-value",
        "version": 2,
        "id": 2,
    }
    assert [entry["id"] for entry in http.get("/schemas").json()] == [1, 2]


def test_subjects_with_reserved_characters(http: httpx.Client) -> None:
    subject = "gov/dept: people value"
    assert register(http, subject, V1.schema_str).status_code == 200
    assert http.get("/subjects").json() == [subject]
    assert http.get(f"/subjects/{quote(subject, safe='')}/versions").json() == [1]


def test_lookup_and_verbose_compatibility(http: httpx.Client) -> None:
    register(http, "people-value", V1.schema_str)
    found = http.post("/subjects/people-value", json={"schema": V1.schema_str})
    assert (found.json()["version"], found.json()["id"]) == (1, 1)
    breaking = json.dumps(
        {"type": "record", "name": "Person", "namespace": "gov.test", "fields": [{"name": "name", "type": "int"}]}
    )
    verdict = http.post(
        "/compatibility/subjects/people-value/versions/latest?verbose=true", json={"schema": breaking}
    ).json()
    assert verdict["is_compatible"] is False
    assert "TYPE_MISMATCH" in verdict["messages"][0]
    fine = http.post("/compatibility/subjects/people-value/versions", json={"schema": V1.schema_str}).json()
    assert fine == {"is_compatible": True}


def test_config_endpoints(http: httpx.Client) -> None:
    assert http.put("/config/people-value", json={"compatibility": "FULL"}).json() == {"compatibility": "FULL"}
    assert http.get("/config/people-value").json() == {"compatibilityLevel": "FULL"}
    missing = http.get("/config/other-value")
    assert (missing.status_code, missing.json()["error_code"]) == (404, 40408)
    assert http.get("/config/other-value?defaultToGlobal=true").json() == {"compatibilityLevel": "BACKWARD"}
    assert http.delete("/config/people-value").json() == {"compatibilityLevel": "FULL"}
    bad = http.put("/config", json={"compatibility": "SIDEWAYS"})
    assert (bad.status_code, bad.json()["error_code"]) == (422, 42203)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error_code"),
    [
        (b"{not json", MEDIA_TYPE, 400, 400),
        (b"", MEDIA_TYPE, 400, 400),
        (b"[1, 2]", MEDIA_TYPE, 422, 422),
        (b'{"schema": 12}', "application/json", 422, 42201),
        (b'{"schema": "{\\"type\\": \\"nope\\"}"}', MEDIA_TYPE, 422, 42201),
        (b'{"schema": "\\"int\\""}', "text/plain", 415, 415),
    ],
)
def test_bad_request_bodies_get_clear_errors_not_tracebacks(
    http: httpx.Client, body: bytes, content_type: str, status: int, error_code: int
) -> None:
    answer = http.post("/subjects/s/versions", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith(MEDIA_TYPE)
    document = answer.json()
    assert document["error_code"] == error_code
    assert document["message"]
    assert "Traceback" not in document["message"]


def test_unknown_routes_and_methods_answer_json_errors(http: httpx.Client) -> None:
    unknown = http.get("/no/such/thing")
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, 404)
    not_allowed = http.put("/schemas/types")
    assert (not_allowed.status_code, not_allowed.json()["error_code"]) == (405, 405)
    assert http.get("/schemas/ids/abc").status_code == 404
