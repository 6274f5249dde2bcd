"""``sharebus backfill``: a new subscriber asks for the retained history of a class it may now receive.

A department action: it goes through the gateway with your system's API key, and the requesting
department is the key's (``--as`` is only checked against it).
"""

from __future__ import annotations

import argparse
import json
import time

from sharebus_cli.gateway_client import GatewayClient, add_credential_arguments, segment
from sharebus_core.backfill_log import BackfillEvent, BackfillState


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backfill = commands.add_parser("backfill", help="replay a class's retained history to a new subscriber")
    sub = backfill.add_subparsers(dest="action", required=True)
    request = sub.add_parser("request", help="ask for the history of a class, for one of your systems")
    request.add_argument("--class", dest="data_class", required=True)
    request.add_argument("--system", required=True, help="the receiving system (of your department)")
    request.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the outcome (default: 0)")
    listing = sub.add_parser("list", help="your department's backfill requests")
    for parser in (request, listing):
        parser.add_argument(
            "--as", dest="department", help="the department you expect to act for: refused unless your key's"
        )
        parser.add_argument("--json", action="store_true")
        add_credential_arguments(parser)


def line(event: BackfillEvent) -> str:
    outcome = f"{event.records} record(s)" if event.state is BackfillState.DONE else event.reason or ""
    return f"{event.request_id}  {event.state.value:<10} {event.consumer:<16} {event.data_class}  {outcome}"


def _wait(client: GatewayClient, event: BackfillEvent, timeout_s: float) -> BackfillEvent:
    deadline = time.monotonic() + timeout_s
    while event.state is BackfillState.REQUESTED and time.monotonic() < deadline:
        time.sleep(0.5)
        event = BackfillEvent.model_validate(client.call("GET", f"/v1/backfills/{segment(event.request_id)}"))
    return event


def run(args: argparse.Namespace) -> tuple[str, int]:
    client = GatewayClient.from_args(args)
    client.acting_as(args.department)
    if args.action == "list":
        events = [BackfillEvent.model_validate(e) for e in client.call("GET", "/v1/backfills")]
        if args.json:
            return json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False, indent=2), 0
        return "\n".join(line(e) for e in events) or "no backfill requests", 0
    body = {"data_class": args.data_class, "system": args.system}
    event = BackfillEvent.model_validate(client.call("POST", "/v1/backfills", body))
    if args.wait > 0:
        event = _wait(client, event, args.wait)
    text = event.model_dump_json() if args.json else line(event)
    return text, exit_code(event, waited=args.wait > 0)


def exit_code(event: BackfillEvent, *, waited: bool) -> int:
    """0 once done (or only requested, when not waiting); 3 when refused (by the gateway or the router);
    5 when it failed; 6 when the wait ran out; 8 when a newer grant superseded it part-way (ask again).
    7 is taken: the CLI's code for a key the gateway does not accept."""
    if event.state is BackfillState.REFUSED:
        return 3
    if event.state is BackfillState.SUPERSEDED:
        return 8
    if event.state is BackfillState.FAILED:
        return 5
    if waited and event.state is BackfillState.REQUESTED:
        return 6
    return 0
