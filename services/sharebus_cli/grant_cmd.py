"""``sharebus grant``: the conditional-share workflow, acting as one named department."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from sharebus_core.catalogue import Catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_grants import GrantService, GrantsSettings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grant = commands.add_parser("grant", help="apply for, decide on and list grants (acting as a department)")
    sub = grant.add_subparsers(dest="action", required=True)

    def acting(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--as", dest="department", required=True, help="the department you act for, e.g. TAX")
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    apply = acting(sub.add_parser("apply", help="apply for a data class for one of your systems"))
    apply.add_argument("--consumer", required=True, help="your system that will receive the records")
    apply.add_argument("--class", dest="data_class", required=True)
    apply.add_argument("--purpose", required=True)
    apply.add_argument("--scenario", required=True, help="the usage scenario")
    apply.add_argument("--fields", default="", help="comma-separated; default: all the class allows")
    apply.add_argument("--mask", default="", help="comma-separated fields to receive masked")
    apply.add_argument("--valid-days", type=float, help="requested validity window")
    apply.add_argument("--requester", default="", help="who applies (default: the department)")
    listing = acting(sub.add_parser("list", help="grants your department provides or consumes"))
    listing.add_argument("--state", choices=[s.value for s in GrantState])
    listing.add_argument("--overdue", action="store_true", help="only applications past their answer deadline")
    show = acting(sub.add_parser("show", help="one grant"))
    show.add_argument("grant_id")
    approve = acting(sub.add_parser("approve", help="approve an application to your data class"))
    approve.add_argument("grant_id")
    approve.add_argument("--valid-days", type=float, help="validity window from now")
    approve.add_argument("--reason", default=None)
    for name in ("reject", "revoke"):
        decide = acting(sub.add_parser(name, help=f"{name} a grant on your data class (a reason is required)"))
        decide.add_argument("grant_id")
        decide.add_argument("--reason", required=True)


def _until(days: float | None) -> dt.datetime | None:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _describe(grant: Grant, service: GrantService) -> str:
    state = grant.effective_state(service.clock()).value
    overdue = " OVERDUE" if service.is_overdue(grant) else ""
    until = grant.valid_until.isoformat(timespec="seconds") if grant.valid_until else "-"
    masked = f" masked={','.join(grant.masked_fields)}" if grant.masked_fields else ""
    reason = f"\n    reason: {grant.reason}" if grant.reason else ""
    return (
        f"{grant.grant_id}  {state}{overdue}  {grant.data_class} {grant.provider} -> {grant.consumer} "
        f"({grant.consumer_department})  until {until}\n    purpose: {grant.purpose}; scenario: {grant.scenario}"
        f"\n    fields: {','.join(grant.fields)}{masked}{reason}"
    )


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> str:
    deadline = GrantsSettings().answer_deadline_working_days
    service = GrantService(
        catalogue,
        settings.kafka,
        TopicNames(settings.namespace).grants,
        control=settings.control_keys(),
        answer_deadline_working_days=deadline,
    )
    department = args.department
    if args.action == "list":
        state = GrantState(args.state) if args.state else None
        grants = service.list(department=department, state=state, overdue_only=args.overdue)
        if args.json:
            return json.dumps([g.model_dump(mode="json") for g in grants], ensure_ascii=False, indent=2)
        return "\n".join(_describe(g, service) for g in grants) or f"no grants visible to {department}"
    if args.action == "apply":
        grant = service.apply(
            department=department,
            requester=args.requester or department,
            consumer=args.consumer,
            data_class=args.data_class,
            purpose=args.purpose,
            scenario=args.scenario,
            fields=_split(args.fields),
            masked_fields=_split(args.mask),
            valid_until=_until(args.valid_days),
        )
    elif args.action == "show":
        grant = service.show(args.grant_id, department=department)
    elif args.action == "approve":
        grant = service.approve(
            args.grant_id, department=department, valid_until=_until(args.valid_days), reason=args.reason
        )
    elif args.action == "reject":
        grant = service.reject(args.grant_id, department=department, reason=args.reason)
    else:
        grant = service.revoke(args.grant_id, department=department, reason=args.reason)
    return grant.model_dump_json(indent=2) if args.json else _describe(grant, service)
