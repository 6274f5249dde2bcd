"""``sharebus dispute``: dispute a record your system received, answer disputes of your records.

``open``, ``inbox``, ``list``, ``show``, ``answer`` and ``correct`` go through the gateway with your
system's API key (as ``grant`` does). ``overdue`` is the bureau's: it reads the disputes topic with the
operator's credential and lists every dispute left unanswered past its deadline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from sharebus_cli.gateway_client import GatewayCallError, GatewayClient, add_credential_arguments, segment
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_disputes import read_disputes
from sharebus_rules.disputes import Dispute, DisputeState

STATES = [s.value for s in DisputeState]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dispute = commands.add_parser("dispute", help="dispute records you received; answer disputes of your records")
    sub = dispute.add_subparsers(dest="action", required=True)

    def acting(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--json", action="store_true", help="print JSON")
        add_credential_arguments(p)
        return p

    opening = acting(sub.add_parser("open", help="dispute a record your system received (by its record id)"))
    opening.add_argument("--record-id", required=True, help="the record's sharebus-record-id")
    opening.add_argument("--fields", required=True, help="comma-separated fields you dispute")
    opening.add_argument("--reason", required=True)
    opening.add_argument(
        "--class",
        dest="data_class",
        help="the record's class: needed when your system received that record id in several classes",
    )
    for name, text in (("inbox", "disputes of records your department provides"), ("list", "your disputes")):
        listing = acting(sub.add_parser(name, help=text))
        listing.add_argument("--state", choices=STATES)
        listing.add_argument("--overdue", action="store_true", help="only those unanswered past their deadline")
        if name == "list":
            listing.add_argument("--role", choices=["provider", "consumer"], help="as provider or as consumer only")
    acting(sub.add_parser("show", help="one dispute")).add_argument("dispute_id")
    answer = acting(sub.add_parser("answer", help="confirm (with a correction) or reject a dispute"))
    answer.add_argument("dispute_id")
    decision = answer.add_mutually_exclusive_group(required=True)
    decision.add_argument("--confirm", action="store_true", help="the record is wrong")
    decision.add_argument("--reject", action="store_true", help="the record is right (say why in --answer)")
    answer.add_argument("--answer", required=True, help="what you found, or why you reject")
    answer.add_argument("--correction", type=Path, help="with --confirm: a JSON file of the corrected record")
    correct = acting(sub.add_parser("correct", help="publish the correction of a confirmed dispute"))
    correct.add_argument("dispute_id")
    correct.add_argument("--record", type=Path, required=True, help="a JSON file of the corrected record")
    overdue = sub.add_parser("overdue", help="the bureau's escalations: disputes unanswered past their deadline")
    overdue.add_argument("--all", action="store_true", help="every dispute, not only the overdue ones")
    overdue.add_argument("--json", action="store_true", help="print JSON")


def _record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GatewayCallError(400, f"cannot read the record in {path}: {exc}") from exc
    if not isinstance(record, dict):
        raise GatewayCallError(400, f"{path} must hold one JSON object (the corrected record)")
    return record


def describe(d: dict[str, Any], state: str, overdue: bool) -> str:
    late = " OVERDUE" if overdue and state != "overdue" else ""
    answer = f"\n    answer: {d['answer']}" if d.get("answer") else ""
    fix = f"\n    correction: record {d['correction_record_id']}" if d.get("correction_record_id") else ""
    return (
        f"{d['dispute_id']}  {state}{late}  record {d['record_id']} of {d['data_class']}  "
        f"{d['consumer']} ({d['consumer_department']}) -> {d['provider']}\n"
        f"    opened {d['opened_at']}, deadline {d['deadline']}; fields: {','.join(d['fields'])}\n"
        f"    reason: {d['reason']}{answer}{fix}"
    )


def _call(client: GatewayClient, args: argparse.Namespace) -> Any:
    if args.action == "open":
        fields = [f.strip() for f in args.fields.split(",") if f.strip()]
        body: dict[str, Any] = {"record_id": args.record_id, "fields": fields, "reason": args.reason}
        if args.data_class:
            body["data_class"] = args.data_class
        return client.call("POST", "/v1/disputes", body)
    if args.action in ("inbox", "list"):
        params: dict[str, Any] = {"overdue": bool(args.overdue)}
        if args.state:
            params["state"] = args.state
        if getattr(args, "role", None):
            params["role"] = args.role
        return client.call("GET", "/v1/disputes/inbox" if args.action == "inbox" else "/v1/disputes", params=params)
    path = f"/v1/disputes/{segment(args.dispute_id)}"
    if args.action == "show":
        return client.call("GET", path)
    if args.action == "correct":
        return client.call("POST", f"{path}/correction", {"record": _record(args.record)})
    correction = _record(args.correction) if args.correction is not None else None
    body = {"decision": "confirm" if args.confirm else "reject", "answer": args.answer, "correction": correction}
    return client.call("POST", f"{path}/answer", body)


def _escalations(args: argparse.Namespace, settings: BusSettings) -> str:
    disputes, _events = read_disputes(settings.kafka, TopicNames(settings.namespace).disputes)
    now = dt.datetime.now(dt.UTC)
    chosen: list[Dispute] = sorted(
        (d for d in disputes.values() if args.all or d.state is DisputeState.OVERDUE or d.is_past_deadline(now)),
        key=lambda d: d.latest.deadline,
    )
    if args.json:
        return json.dumps([{**d.latest.model_dump(mode="json"), "state": d.state.value} for d in chosen], indent=2)
    lines = [describe(d.latest.model_dump(mode="json"), d.state.value, d.is_past_deadline(now)) for d in chosen]
    return "\n".join(lines) or ("no disputes" if args.all else "no dispute is overdue")


def run(args: argparse.Namespace, settings: BusSettings) -> str:
    if args.action == "overdue":
        return _escalations(args, settings)
    client = GatewayClient.from_args(args)
    result = _call(client, args)
    views: list[dict[str, Any]] = result if isinstance(result, list) else [result]
    if args.json:
        flat = [{**v["dispute"], "state": v["state"], "overdue": v["overdue"]} for v in views]
        return json.dumps(flat if isinstance(result, list) else flat[0], ensure_ascii=False, indent=2)
    text = "\n".join(describe(v["dispute"], v["state"], v["overdue"]) for v in views)
    return text or "no disputes"
