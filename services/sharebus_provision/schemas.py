"""Registers every data class's schema under the subject of its source topic, and the projection
schemas the catalogue alone decides under their delivery subjects, incrementally.

One listing of what the registry already holds (``GET /schemas?latestOnly=true``), then only the
missing or changed schemas are registered, a few requests in flight, retrying the answers that mean
"busy" (429, 503). A city catalogue (3,170 classes) that is already registered costs one request,
and its 4,260 projections one more.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from sharebus_core.catalogue import Catalogue
from sharebus_core.registry_client import registry_http_auth
from sharebus_core.topics import TopicNames
from sharebus_provision.errors import ProvisionError
from sharebus_rules.routing import class_projections

log = logging.getLogger(__name__)

IN_FLIGHT = 16
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_ATTEMPTS = 6
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass(frozen=True, slots=True)
class SchemaProvisioning:
    """Class code -> schema id, and the codes whose schema this run registered."""

    ids: dict[str, int]
    registered: tuple[str, ...]


def wait_for_registry(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise ProvisionError(f"the schema registry at {url} did not answer within {timeout_s:.0f}s ({last})")


def register_catalogue_schemas(
    catalogue: Catalogue, topics: TopicNames, registry_url: str, registry_auth: str | None
) -> dict[str, int]:
    """Returns class code -> schema id. An incompatible change names the class and the registry's reason.

    ``registry_auth`` (``user:password``) must be a principal the registry lets register schemas.
    """
    return provision_schemas(catalogue, topics, registry_url, registry_auth).ids


def provision_schemas(
    catalogue: Catalogue, topics: TopicNames, registry_url: str, registry_auth: str | None
) -> SchemaProvisioning:
    """Registers what the registry lacks; says which classes that was."""
    # GET / is the registry's open readiness probe: it answers without a credential.
    wait_for_registry(registry_url)
    subjects = {topics.value_subject(code): code for code in catalogue.schemas}
    with _client(registry_url, registry_auth) as client:
        latest = _latest(client, f"{topics.namespace}.src.")
        ids: dict[str, int] = {}
        todo: list[str] = []
        for subject, code in subjects.items():
            held = latest.get(subject)
            if held is not None and _same(held[1], catalogue.schemas[code].text):
                ids[code] = held[0]
            else:
                todo.append(code)
        with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="register") as pool:
            for code, schema_id in zip(
                todo, pool.map(lambda c: _register(client, topics, c, catalogue.schemas[c].text), todo), strict=True
            ):
                ids[code] = schema_id
    if todo:
        log.info("registered %d schema(s); %d were already registered", len(todo), len(ids) - len(todo))
    return SchemaProvisioning(ids, tuple(todo))


def provision_projections(
    catalogue: Catalogue, topics: TopicNames, registry_url: str, registry_auth: str | None, *, public: bool
) -> tuple[str, ...]:
    """Registers the projection schemas the catalogue alone decides (``catalogue_projection_schemas``) whose
    subjects the registry does not hold yet; returns the subjects this run registered.

    The router registers a route's projection when it builds it; at city scale that was 4,260 requests,
    half of its first start. Registered here, beside the topics' creation, the router finds them in the
    registry's listing. Best effort, and only new subjects: a subject that holds any schema already may
    hold a grant's projection, which only the router knows of, and a subject that cannot be registered
    here (refused, or taken meanwhile) is left to the router, which closes only that class's route if
    it cannot register it either. Nothing here keeps the router from starting.
    """
    try:
        wanted = catalogue_projection_schemas(catalogue, topics, public)
        with _client(registry_url, registry_auth) as client:
            held = _latest(client, topics.delivery(""))
            todo = [(subject, text) for subject, text in wanted.items() if subject not in held]
            with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="register-projection") as pool:
                refusals = list(pool.map(lambda item: _register_projection(client, *item), todo))
    except ProvisionError as exc:
        log.warning("projection schemas not registered ahead (%s); the router registers them", exc)
        return ()
    registered = tuple(subject for (subject, _), refusal in zip(todo, refusals, strict=True) if refusal is None)
    refused = [refusal for refusal in refusals if refusal is not None]
    if refused:
        log.warning("%d projection schema(s) left to the router; the first: %s", len(refused), refused[0])
    if registered:
        log.info("registered %d projection schema(s) ahead of the router", len(registered))
    return registered


def catalogue_projection_schemas(catalogue: Catalogue, topics: TopicNames, public: bool) -> dict[str, str]:
    """Subject -> schema text of each projection the catalogue alone decides, as the router would register
    it; a class whose projections cannot be derived is left out (the router decides it)."""
    now = dt.datetime.now(dt.UTC)
    wanted: dict[str, str] = {}
    for code in catalogue.data_classes:
        try:
            projections = list(class_projections(catalogue, code, now, public=public))
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("the projections of %s cannot be derived here (%s); the router decides", code, exc)
            continue
        for consumer, schema in projections:
            wanted[topics.projection_subject(consumer, code)] = json.dumps(schema, ensure_ascii=False)
    return wanted


def _register_projection(client: httpx.Client, subject: str, text: str) -> str | None:
    """Registers one projection; returns why the registry refused it, None when it took it."""
    what = f"registering the projection schema {subject}"
    try:
        _call(client, "POST", f"/subjects/{subject}/versions", json={"schema": text, "schemaType": "AVRO"}, what=what)
    except ProvisionError as exc:
        return str(exc)
    return None


def _client(registry_url: str, registry_auth: str | None) -> httpx.Client:
    """A client for ``IN_FLIGHT`` requests at once."""
    return httpx.Client(
        base_url=registry_url.rstrip("/"),
        auth=registry_http_auth(registry_auth),
        timeout=60.0,
        limits=httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT),
    )


def _same(held: str, wanted: str) -> bool:
    try:
        return bool(json.loads(held) == json.loads(wanted))
    except ValueError:
        return False


def _latest(client: httpx.Client, prefix: str) -> dict[str, tuple[int, str]]:
    """Subject -> (id, text) of the latest live version of every subject that starts with ``prefix``."""
    answer = _call(
        client,
        "GET",
        "/schemas",
        params={"latestOnly": "true", "subjectPrefix": prefix},
        what="listing the registered schemas",
    )
    documents = answer if isinstance(answer, list) else []
    return {d["subject"]: (int(d["id"]), str(d["schema"])) for d in documents if isinstance(d, dict)}


def _register(client: httpx.Client, topics: TopicNames, code: str, text: str) -> int:
    subject = topics.value_subject(code)
    answer = _call(
        client,
        "POST",
        f"/subjects/{subject}/versions",
        json={"schema": text, "schemaType": "AVRO"},
        what=f"registering the schema of data class {code} under {subject}",
    )
    if not isinstance(answer, dict) or "id" not in answer:
        raise ProvisionError(f"registering the schema of data class {code}: the registry answered {answer!r}")
    return int(answer["id"])


def _call(client: httpx.Client, method: str, path: str, *, what: str, **kwargs: object) -> object:
    delay = 0.2
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            response = client.request(method, path, headers={"Content-Type": _CONTENT_TYPE}, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            if attempt == _ATTEMPTS:
                raise ProvisionError(f"{what} failed: the registry did not answer ({exc})") from exc
        else:
            if response.status_code < 300:
                try:
                    return response.json()
                except ValueError as exc:
                    raise ProvisionError(f"{what}: the registry answered {response.text[:300]!r}") from exc
            if response.status_code not in _RETRY_STATUSES or attempt == _ATTEMPTS:
                raise ProvisionError(f"{what} failed (HTTP {response.status_code}): {_reason(response)}")
        time.sleep(delay)
        delay = min(delay * 2, 3.0)
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(document, dict):
        return f"error {document.get('error_code')}: {document.get('message')}"
    return str(document)[:300]
