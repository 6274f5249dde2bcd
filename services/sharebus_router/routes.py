"""Per source topic, everything the hot path needs, computed from the catalogue, the grants and the rules.

A route is rebuilt when a grant of its class changes or expires, never per record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue, DataClass, UpdateMode
from sharebus_core.grants import Grant
from sharebus_core.topics import TopicNames
from sharebus_router.metrics import LazyChild, RouterMetrics
from sharebus_router.schema_cache import SchemaCache
from sharebus_rules import Deliver, plan_routes
from sharebus_rules.decision import DenyReason
from sharebus_rules.routing import projection_schema


@dataclass(frozen=True, slots=True)
class Projection:
    fields: tuple[str, ...]
    masked: frozenset[str]
    schema_id: int
    parsed: Any
    # The projection's schema (JSON): a record may be spliced only if its writer schema derives the same.
    document: Any = None


@dataclass(frozen=True, slots=True)
class Target:
    consumer: str
    grant_id: str | None
    topic: str
    extra_headers: tuple[tuple[str, bytes], ...]
    # None: the consumer may see every field unmasked, so the published bytes pass unchanged.
    projection: Projection | None
    # Epoch seconds when the grant this delivery relies on expires; checked per record.
    expires_at: float | None
    calls: Any
    records: Any
    expired: Any
    # A district's system (docs/federation.md): its level fields for the audit, and the
    # cross-level counters each delivery to it adds to (down, and up when the provider is a district's).
    level: Mapping[str, str] = field(default_factory=dict)
    crossings: tuple[Any, ...] = ()
    # False when the grant leaves out or masks the class's key field, whose value the record key carries.
    key_shown: bool = True

    @property
    def shown(self) -> tuple[str, ...] | None:
        """The fields this consumer receives (None: every field, the published bytes)."""
        return self.projection.fields if self.projection is not None else None

    def key_of(self, key: bytes | None) -> bytes | None:
        """The record key this consumer receives: withheld (None) where its grant does not show the key field."""
        return key if self.key_shown else None


def shows_key(projection: Projection | None, key_field: str) -> bool:
    """Whether a consumer with this projection sees the key field as published (None: every field is seen)."""
    return projection is None or (key_field in projection.fields and key_field not in projection.masked)


@dataclass(frozen=True, slots=True)
class Denial:
    consumer: str
    reason: str
    grant_id: str | None
    counter: Any
    level: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClassRoute:
    data_class: str
    provider: str
    mode: str
    subject: str
    targets: tuple[Target, ...]
    denials: tuple[Denial, ...]
    received: Any
    latency: Any
    valid_until: dt.datetime | None
    # Periodic classes: records are held for release instead of forwarded.
    held: bool = False
    # The routes could not be built: every consumer is denied until they can (RouteBuilder.closed).
    closed: bool = False
    # partition -> the next source offset the handler will route (updated per record).
    next_offsets: dict[int, int] = field(default_factory=dict)
    # The provider's level fields for the audit when it is a district's (a class federated up).
    level: Mapping[str, str] = field(default_factory=dict)
    # The class's schema in the catalogue (fastavro's parsed form): what every record is read as, so a
    # record written with an earlier version gets the fields added since, with their defaults.
    schema: Any = None

    @property
    def needs_record(self) -> bool:
        return any(t.projection is not None for t in self.targets)


class RouteBuilder:
    def __init__(
        self,
        catalogue: Catalogue,
        topics: TopicNames,
        metrics: RouterMetrics,
        schemas: SchemaCache,
        *,
        public: bool = False,
    ) -> None:
        self.catalogue = catalogue
        # Open classes also go to the public delivery topic (sharebus_rules.routing.public_delivery).
        self.public = public
        self.topics = topics
        self.metrics = metrics
        self.schemas = schemas
        self._projections: dict[tuple[str, str, tuple[str, ...], frozenset[str]], Projection] = {}

    def _level(self, role: str, department: str | None) -> dict[str, str]:
        """Audit fields of a district's department (bounded: the city catalogue's district codes)."""
        level, district = self.catalogue.level_of(department) if department else ("city", "")
        return {f"{role}_level": level, f"{role}_district": district} if district else {}

    def _crossings(self, provider: str, consumer: str) -> tuple[Any, ...]:
        """The cross-level counters one delivery adds to: up from the provider's district, down to the
        consumer's (both, for a district's class granted to another district's system)."""
        up = self._level("provider", provider).get("provider_district")
        down = self._level("consumer", self.catalogue.department_of_system.get(consumer)).get("consumer_district")
        found = [self.metrics.cross_level.labels("up", up)] if up else []
        return (*found, *([self.metrics.cross_level.labels("down", down)] if down else []))

    async def _projection(self, class_code: str, decision: Deliver) -> Projection | None:
        if decision.fields is None:
            return None
        key = (class_code, decision.consumer, decision.fields, decision.masked)
        found = self._projections.get(key)
        if found is None:
            derived = projection_schema(self.catalogue, class_code, decision.fields, decision.masked)
            subject = self.topics.projection_subject(decision.consumer, class_code)
            schema_id, parsed = await self.schemas.register(subject, json.dumps(derived, ensure_ascii=False))
            projection = Projection(decision.fields, decision.masked, schema_id, parsed, derived)
            found = self._projections[key] = projection
        return found

    async def whole(self, class_code: str, consumer: str) -> Projection:
        """Every field of the class as it is now, none masked: what a consumer allowed every field receives of
        a record whose writer schema holds a field the class no longer has (``RecordHandler.fitted``).
        Registered the first time one is needed, under the consumer's projection subject."""
        fields = self.catalogue.schema(class_code).field_names
        projection = await self._projection(class_code, Deliver(consumer, fields))
        assert projection is not None  # fields given: a projection, never the published bytes
        return projection

    def closed(self, class_code: str, consumers: Sequence[str]) -> ClassRoute:
        """A route that delivers to nobody: every consumer denied, for a class whose routes could not be built.

        A periodic class stays held (its records wait on the held topic); its release refuses to run
        while the route is closed, so a batch is never denied for a passing failure.
        """
        entry = self.catalogue.data_class(class_code)
        reason = DenyReason.ROUTES_UNAVAILABLE.value
        return ClassRoute(
            data_class=class_code,
            provider=entry.provider,
            mode=entry.mode.value,
            subject=self.topics.value_subject(class_code),
            schema=self.catalogue.schema(class_code).parsed,
            targets=(),
            denials=tuple(
                Denial(
                    c,
                    reason,
                    None,
                    self.metrics.denials.labels(entry.provider, c, class_code, reason),
                    self._level("consumer", self.catalogue.department_of_system.get(c)),
                )
                for c in consumers
            ),
            received=self.metrics.received.labels(entry.provider, class_code, entry.mode.value),
            latency=self.metrics.latency.labels(entry.mode.value),
            valid_until=None,
            held=entry.mode is UpdateMode.PERIODIC,
            closed=True,
            level=self._level("provider", entry.provider),
        )

    async def _target(
        self, class_code: str, entry: DataClass, d: Deliver, grants: Mapping[str, Sequence[Grant]]
    ) -> Target:
        """One delivery of the route: its topic, headers, projection, expiry and counters."""
        mode = entry.mode.value
        share_type = entry.share_type.value
        grant = next((g for g in grants.get(d.consumer, ()) if g.grant_id == d.grant_id), None)
        expires = grant.valid_until.timestamp() if grant is not None and grant.valid_until else None
        extra = [(h.CONSUMER, d.consumer.encode()), (h.MODE, mode.encode())]
        if d.grant_id is not None:
            extra.append((h.GRANT_ID, d.grant_id.encode()))
        projection = await self._projection(class_code, d)
        key_shown = shows_key(projection, entry.key_field)
        if not key_shown:
            extra.append((h.KEY_WITHHELD, entry.key_field.encode()))
        return Target(
            consumer=d.consumer,
            grant_id=d.grant_id,
            topic=self.topics.delivery(d.consumer),
            extra_headers=tuple(extra),
            projection=projection,
            key_shown=key_shown,
            expires_at=expires,
            calls=self.metrics.calls.labels(entry.provider, d.consumer, class_code, share_type, mode),
            records=self.metrics.records.labels(entry.provider, d.consumer, class_code, share_type, mode),
            expired=LazyChild(
                self.metrics.denials, entry.provider, d.consumer, class_code, DenyReason.GRANT_EXPIRED.value
            ),
            level=self._level("consumer", self.catalogue.department_of_system.get(d.consumer)),
            crossings=self._crossings(entry.provider, d.consumer),
        )

    async def build(self, class_code: str, grants: Mapping[str, Sequence[Grant]], now: dt.datetime) -> ClassRoute:
        entry = self.catalogue.data_class(class_code)
        plan = plan_routes(self.catalogue, class_code, grants, now, public=self.public)
        mode = entry.mode.value
        labels = (entry.provider, class_code, mode)
        targets = [await self._target(class_code, entry, d, grants) for d in plan.deliveries]
        # Series exist from the start (at 0), so rates and alerts work before the first batch.
        if entry.mode is UpdateMode.PERIODIC:
            for outcome in ("delivered", "empty"):
                self.metrics.batches.labels(entry.provider, class_code, outcome)
        return ClassRoute(
            data_class=class_code,
            provider=entry.provider,
            mode=mode,
            subject=self.topics.value_subject(class_code),
            schema=self.catalogue.schema(class_code).parsed,
            targets=tuple(targets),
            denials=tuple(
                Denial(
                    d.consumer,
                    d.reason.value,
                    d.grant_id,
                    self.metrics.denials.labels(entry.provider, d.consumer, class_code, d.reason.value),
                    self._level("consumer", self.catalogue.department_of_system.get(d.consumer)),
                )
                for d in plan.denials
            ),
            received=self.metrics.received.labels(*labels),
            latency=self.metrics.latency.labels(mode),
            valid_until=plan.valid_until,
            held=entry.mode is UpdateMode.PERIODIC,
            level=self._level("provider", entry.provider),
        )
