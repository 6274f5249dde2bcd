"""``sharebus freshness``: each provider's classes, how old their newest data is, and which are overdue.

A class's newest data is its source topic's newest record that the router would route: Confluent-framed
Avro of a schema registered for the class, decoding whole (``RecordCheck``). A newer record that it
dead-letters makes nothing look fresh (``FreshnessTracker.seed_checked``, as the router seeds).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
from typing import Any

import fastavro
import httpx

from sharebus_core.catalogue import Catalogue
from sharebus_core.errors import SharebusError
from sharebus_core.registry_client import registry_http_auth
from sharebus_core.settings import BusSettings
from sharebus_core.topic_reader import TopicReadError
from sharebus_core.topics import TopicNames
from sharebus_core.wire import WireFormatError, unframe
from sharebus_router.freshness import FreshnessTracker
from sharebus_rules.freshness import Freshness, FreshnessPolicy, assess


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("freshness", help="which providers keep their data classes on time")
    report.add_argument("--provider", help="one department's classes only (e.g. AMR)")
    report.add_argument("--grace-hours", type=float, default=1.0, help="allowed lateness of periodic classes")
    report.add_argument(
        "--realtime-silence-hours", type=float, default=24.0, help="allowed silence of real-time classes"
    )
    report.add_argument("--overdue", action="store_true", help="only the overdue classes")
    report.add_argument("--json", action="store_true")


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400 * 365:
        return "never"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _as_json(item: Freshness) -> dict[str, object]:
    return {
        "provider": item.provider,
        "data_class": item.data_class,
        "mode": item.mode,
        "last_record": item.last_record.isoformat() if item.last_record else None,
        "age_seconds": round(item.age.total_seconds(), 1),
        "allowed_seconds": item.allowed.total_seconds(),
        "overdue": item.overdue,
    }


class UnknownProvider(SharebusError, ValueError):
    """``--provider`` names no department of the catalogue (its classes would be none: "0 overdue")."""


class RecordCheck:
    """The router's wire and schema checks, asked of the registry over HTTP (each schema id once)."""

    def __init__(self, client: httpx.Client, subjects: dict[str, str]) -> None:
        """``subjects``: source topic -> its class's registry subject."""
        self.client = client
        self.subjects = subjects
        self._schemas: dict[int, tuple[Any, frozenset[str]] | None] = {}

    def _schema(self, schema_id: int) -> tuple[Any, frozenset[str]] | None:
        if schema_id not in self._schemas:
            try:
                found = self.client.get(f"/schemas/ids/{schema_id}")
                if found.status_code == 404:
                    self._schemas[schema_id] = None
                    return None
                found.raise_for_status()
                versions = self.client.get(f"/schemas/ids/{schema_id}/versions")
                versions.raise_for_status()
            except httpx.HTTPError as exc:
                raise TopicReadError(f"the schema registry did not answer for schema id {schema_id}: {exc}") from exc
            parsed = fastavro.parse_schema(json.loads(found.json()["schema"]))
            self._schemas[schema_id] = (parsed, frozenset(v["subject"] for v in versions.json()))
        return self._schemas[schema_id]

    def __call__(self, topic: str, value: bytes | None) -> bool:
        try:
            schema_id, body = unframe(value)
        except WireFormatError:
            return False
        schema = self._schema(schema_id)
        if schema is None or self.subjects.get(topic) not in schema[1]:
            return False
        reading = io.BytesIO(body)
        try:
            fastavro.schemaless_reader(reading, schema[0], None)
        except Exception:  # noqa: BLE001 - whatever fastavro raises, the router dead-letters it (schema_invalid)
            return False
        return reading.tell() == len(body)


def freshness_report(
    catalogue: Catalogue,
    settings: BusSettings,
    now: dt.datetime,
    policy: FreshnessPolicy,
    provider: str | None = None,
    registry_transport: httpx.BaseTransport | None = None,
) -> list[Freshness]:
    """One assessment per class (of ``provider``), sorted by provider and code. A class without a retained
    record the router would route is judged from the Unix epoch: overdue."""
    topics = TopicNames(settings.namespace)
    entries = sorted(
        (e for e in catalogue.data_classes.values() if provider is None or e.provider == provider),
        key=lambda e: (e.provider, e.code),
    )
    sources = {topics.source(e.code): e.code for e in entries}
    tracker = FreshnessTracker(catalogue, now.timestamp, policy)
    auth = registry_http_auth(settings.registry_auth)
    registry = settings.registry_url.rstrip("/")
    with httpx.Client(base_url=registry, auth=auth, timeout=10, transport=registry_transport) as client:
        check = RecordCheck(client, {topic: topics.value_subject(code) for topic, code in sources.items()})

        async def valid(topic: str, value: bytes | None) -> bool:
            return check(topic, value)

        asyncio.run(tracker.seed_from_log(settings.kafka, sources, valid))
    never = dt.datetime.fromtimestamp(0, dt.UTC)
    report = []
    for entry in entries:
        seen = tracker.last.get(entry.code)
        last = dt.datetime.fromtimestamp(seen, dt.UTC) if seen is not None else None
        report.append(assess(entry, last, never, now, policy))
    return report


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> tuple[str, int]:
    if args.provider is not None and args.provider not in catalogue.departments:
        raise UnknownProvider(f"no department {args.provider!r} in the catalogue (e.g. {min(catalogue.departments)})")
    policy = FreshnessPolicy(dt.timedelta(hours=args.grace_hours), dt.timedelta(hours=args.realtime_silence_hours))
    now = dt.datetime.now(dt.UTC)
    report = freshness_report(catalogue, settings, now, policy, args.provider)
    looked_at = len(report)
    if args.overdue:
        report = [item for item in report if item.overdue]
    if args.json:
        return json.dumps([_as_json(item) for item in report], ensure_ascii=False, indent=2), 0
    lines = [f"{'provider':<8} {'data class':<18} {'name':<40} {'mode':<9} {'newest record':<20} {'age':>8}  status"]
    for item in report:
        entry = catalogue.data_class(item.data_class)
        newest = item.last_record.strftime("%Y-%m-%d %H:%M:%S") if item.last_record else "-"
        status = "OVERDUE" if item.overdue else "ok"
        period = entry.update.period.value if entry.update.period else "realtime"
        lines.append(
            f"{item.provider:<8} {item.data_class:<18} {entry.name[:40]:<40} {period:<9} {newest:<20} "
            f"{_age(item.age):>8}  {status}"
        )
    overdue = sum(item.overdue for item in report)
    lines.append(f"{overdue} of {looked_at} class(es) overdue")
    return "\n".join(lines), 0
