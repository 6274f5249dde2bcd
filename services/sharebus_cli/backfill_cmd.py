"""``sharebus backfill``: a new subscriber asks for the retained history of a class it may now receive."""

from __future__ import annotations

import argparse
import json

from sharebus_core.backfill_log import BackfillEvent, BackfillState, wait_outcome
from sharebus_core.catalogue import Catalogue
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_ops.backfill import backfills_of, request_backfill


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backfill = commands.add_parser("backfill", help="replay a class's retained history to a new subscriber")
    sub = backfill.add_subparsers(dest="action", required=True)
    request = sub.add_parser("request", help="ask for the history of a class, for one of your systems")
    request.add_argument("--class", dest="data_class", required=True)
    request.add_argument("--system", required=True, help="the receiving system (of your department)")
    request.add_argument("--as", dest="department", required=True, help="your department code")
    request.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the outcome (default: 0)")
    listing = sub.add_parser("list", help="your department's backfill requests")
    listing.add_argument("--as", dest="department", required=True)
    for parser in (request, listing):
        parser.add_argument("--json", action="store_true")


def _line(event: BackfillEvent) -> str:
    outcome = f"{event.records} record(s)" if event.state is BackfillState.DONE else event.reason or ""
    return f"{event.request_id}  {event.state.value:<9} {event.consumer:<16} {event.data_class}  {outcome}"


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> tuple[str, int]:
    topics = TopicNames(settings.namespace)
    access = settings.kafka
    if args.action == "list":
        events = backfills_of(access, topics, args.department, catalogue)
        if args.json:
            return json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False, indent=2), 0
        return "\n".join(_line(e) for e in events) or "no backfill requests", 0
    verifier = settings.control_keys().verifier
    event = request_backfill(
        catalogue, access, topics, args.department, args.system, args.data_class, verifier=verifier
    )
    if args.wait > 0:
        event = wait_outcome(access, topics.backfill, event.request_id, args.wait) or event
    text = event.model_dump_json() if args.json else _line(event)
    # 0 once done (or only requested, when not waiting); 3 when the router refused; 5 when it failed;
    # 6 when the wait ran out.
    if event.state is BackfillState.REFUSED:
        return text, 3
    if event.state is BackfillState.FAILED:
        return text, 5
    if args.wait > 0 and event.state is BackfillState.REQUESTED:
        return text, 6
    return text, 0
