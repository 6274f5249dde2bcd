"""``sharebus freshness``: each provider's classes, how old their newest data is, and which are overdue."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from sharebus_core.catalogue import Catalogue
from sharebus_core.errors import SharebusError
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_ops.freshness import freshness_report
from sharebus_rules.freshness import Freshness, FreshnessPolicy


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


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> tuple[str, int]:
    if args.provider is not None and args.provider not in catalogue.departments:
        raise UnknownProvider(f"no department {args.provider!r} in the catalogue (e.g. {min(catalogue.departments)})")
    policy = FreshnessPolicy(dt.timedelta(hours=args.grace_hours), dt.timedelta(hours=args.realtime_silence_hours))
    now = dt.datetime.now(dt.UTC)
    report = freshness_report(catalogue, settings.kafka, TopicNames(settings.namespace), now, policy, args.provider)
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
