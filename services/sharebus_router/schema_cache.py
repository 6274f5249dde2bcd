"""Writer schemas by id, fetched from the registry once and parsed once."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
import httpx

from sharebus_core.errors import SharebusError
from sharebus_core.registry_client import registry_http_auth

log = logging.getLogger(__name__)

# Defaults of RouterSettings.unknown_schema_ttl_s and .unknown_schema_cache_size.
DEFAULT_NEGATIVE_TTL_S = 30.0
DEFAULT_NEGATIVE_ENTRIES = 10_000


class UnknownSchemaId(SharebusError, LookupError):
    pass


@dataclass(frozen=True, slots=True)
class WriterSchema:
    schema_id: int
    parsed: Any
    subjects: frozenset[str]
    # The schema as registered (JSON), for the splicer (projector.py): fastavro's parsed form renames.
    document: Any = None


class NegativeCache:
    """Keys known to be absent, each for ``ttl_s``; at most ``max_entries``, the least recently added
    going first. Bounded, so that a publisher sending random schema ids cannot grow the router's memory."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._until: OrderedDict[object, float] = OrderedDict()

    def add(self, key: object) -> None:
        self._until[key] = self.clock() + self.ttl_s
        self._until.move_to_end(key)
        while len(self._until) > self.max_entries:
            self._until.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self.clock():
            del self._until[key]
            return False
        return True

    def discard(self, key: object) -> None:
        self._until.pop(key, None)

    def __len__(self) -> int:
        return len(self._until)


class RecheckBudget:
    """At most ``burst`` re-checks per key in each ``window_s``; at most ``max_entries`` keys remembered.

    Not a plain negative cache: the first few re-checks go through at once, so a record replayed right
    after its schema was registered for its class is routed; only a flood is held to the budget.
    """

    def __init__(
        self, window_s: float, max_entries: int, burst: int = 3, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.burst = burst
        self.clock = clock
        self._spent: OrderedDict[object, tuple[float, int]] = OrderedDict()

    def allow(self, key: object) -> bool:
        """True, and one re-check spent, when ``key`` has budget left in its window."""
        now = self.clock()
        start, count = self._spent.get(key, (now, 0))
        if now - start >= self.window_s:
            start, count = now, 0
        if count >= self.burst:
            return False
        self._spent[key] = (start, count + 1)
        self._spent.move_to_end(key)
        while len(self._spent) > self.max_entries:
            self._spent.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._spent)


def _registry_outage(status: int) -> bool:
    return status == 429 or status >= 500


def _same_schema(held: str, wanted: str) -> bool:
    try:
        return bool(json.loads(held) == json.loads(wanted))
    except ValueError:
        return False


class SchemaCache:
    """A registry outage is not the record's fault: lookups retry until the registry answers,
    which holds the stream back instead of dead-lettering good records.

    A bad record must not cost a registry call each: an id the registry does not know is remembered
    (bounded, for a while), and an id registered for another class than the record's is re-checked at
    most a few times per interval; records repeating them are dead-lettered from memory.
    """

    def __init__(
        self,
        registry_url: str,
        timeout_s: float,
        registry_auth: str | None,
        negative_ttl_s: float = DEFAULT_NEGATIVE_TTL_S,
        negative_entries: int = DEFAULT_NEGATIVE_ENTRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        registered_prefix: str | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=registry_url.rstrip("/"),
            timeout=timeout_s,
            auth=registry_http_auth(registry_auth),
            transport=transport,
        )
        self._schemas: dict[int, WriterSchema] = {}
        # Schema ids the registry answered 404 for.
        self.unknown = NegativeCache(negative_ttl_s, negative_entries, clock)
        # Re-checks of (schema id, subject) pairs found not registered together.
        self.rechecks = RecheckBudget(negative_ttl_s, negative_entries, clock=clock)
        self.lookups = 0
        # Subjects under this prefix (the projections) are listed once, at the first registration: a
        # projection already registered as it is now needs no request (a restart over the city's 6,847
        # subscriptions would otherwise make two registry writes each before routing a record).
        self._registered_prefix = registered_prefix
        self._registered: dict[str, tuple[int, str]] | None = None
        self._listing = asyncio.Lock()
        # Whether the listing answered: only then is a subject absent from it known to be new.
        self._listing_complete = False
        self.registrations = 0

    def remember(self, schema_id: int, schema_text: str, subject: str) -> None:
        """Preloads a schema the caller registered itself, so the first record needs no lookup."""
        self.unknown.discard(schema_id)
        known = self._schemas.get(schema_id)
        if known is not None:
            self._schemas[schema_id] = WriterSchema(schema_id, known.parsed, known.subjects | {subject}, known.document)
            return
        document = json.loads(schema_text)
        self._schemas[schema_id] = WriterSchema(
            schema_id, fastavro.parse_schema(document), frozenset({subject}), document
        )

    async def register(self, subject: str, schema_text: str) -> tuple[int, Any]:
        """Registers a projection schema; returns its id and parsed form.

        A consumer's projection changes whenever its grant's fields do, so its subject takes any
        schema (compatibility NONE): the subscriber decodes each record by its own schema id. A subject
        the listing showed absent takes its first schema at any level, so it is registered at once and
        its level set only if the registry refuses (409): at city scale that is 6,847 requests fewer.
        """
        listed = await self._listed()
        known = listed.get(subject)
        if known is not None and _same_schema(known[1], schema_text):
            self.remember(known[0], schema_text, subject)
            return known[0], self._schemas[known[0]].parsed
        self.registrations += 1
        level_first = known is not None or not self._listing_complete
        delay = 0.2
        while True:
            try:
                schema_id = await self._put_version(subject, schema_text, level_first)
                break
            except httpx.TransportError as exc:
                log.warning("schema registry unavailable (%s); retrying registration of %s", exc, subject)
            except httpx.HTTPStatusError as exc:
                # Busy (429), or failing on its side (5xx: its store, its backend, a proxy before it): an
                # outage, not the record's fault. Any other answer (a refusal) is final.
                if not _registry_outage(exc.response.status_code):
                    raise
                log.warning("schema registry busy (%s); retrying registration of %s", exc.response.status_code, subject)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        self.remember(schema_id, schema_text, subject)
        return schema_id, self._schemas[schema_id].parsed

    async def _put_version(self, subject: str, schema_text: str, level_first: bool) -> int:
        if level_first:
            config = await self._client.put(f"/config/{subject}", json={"compatibility": "NONE"})
            config.raise_for_status()
        response = await self._client.post(f"/subjects/{subject}/versions", json={"schema": schema_text})
        if response.status_code == 409 and not level_first:
            # The subject holds a schema after all (another worker registered it since the listing).
            return await self._put_version(subject, schema_text, True)
        response.raise_for_status()
        return int(response.json()["id"])

    async def _listed(self) -> dict[str, tuple[int, str]]:
        """Subject -> (id, text) of the latest schemas under the prefix, listed once. A listing that
        fails leaves it empty: every projection is then registered, as without it."""
        if self._registered_prefix is None:
            return {}
        async with self._listing:
            if self._registered is None:
                self._registered = {}
                try:
                    response = await self._client.get(
                        "/schemas", params={"latestOnly": "true", "subjectPrefix": self._registered_prefix}
                    )
                    response.raise_for_status()
                    for doc in response.json():
                        self._registered[str(doc["subject"])] = (int(doc["id"]), str(doc["schema"]))
                    self._listing_complete = True
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    log.warning("could not list the registered projections (%s); registering each", exc)
        return self._registered

    def cached(self, schema_id: int) -> WriterSchema | None:
        return self._schemas.get(schema_id)

    async def get(self, schema_id: int) -> WriterSchema:
        found = self._schemas.get(schema_id)
        if found is not None:
            return found
        if schema_id in self.unknown:
            raise UnknownSchemaId(f"schema id {schema_id} is not in the registry (remembered)")
        schema = await self._fetch(schema_id)
        self._schemas[schema_id] = schema
        return schema

    async def recheck(self, schema_id: int, subject: str) -> WriterSchema:
        """The schema of ``schema_id`` fetched again, unless its re-checks for ``subject`` are used up for
        now: a schema can be registered under more subjects after it was cached."""
        known = self._schemas.get(schema_id)
        if known is not None and not self.rechecks.allow((schema_id, subject)):
            return known
        return await self.refresh(schema_id)

    async def refresh(self, schema_id: int) -> WriterSchema:
        """Fetches an id again: a schema can be registered under more subjects after it was cached."""
        schema = await self._fetch(schema_id)
        self._schemas[schema_id] = schema
        return schema

    async def _fetch(self, schema_id: int) -> WriterSchema:
        delay = 0.2
        while True:
            try:
                self.lookups += 1
                schema_resp = await self._client.get(f"/schemas/ids/{schema_id}")
                if schema_resp.status_code == 404:
                    self.unknown.add(schema_id)
                    raise UnknownSchemaId(f"schema id {schema_id} is not in the registry")
                schema_resp.raise_for_status()
                versions_resp = await self._client.get(f"/schemas/ids/{schema_id}/versions")
                versions_resp.raise_for_status()
                break
            except httpx.HTTPError as exc:
                log.warning("schema registry unavailable (%s); retrying schema id %d in %.1fs", exc, schema_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        document = json.loads(schema_resp.json()["schema"])
        subjects = frozenset(v["subject"] for v in versions_resp.json())
        return WriterSchema(schema_id, fastavro.parse_schema(document), subjects, document)

    async def close(self) -> None:
        await self._client.aclose()
