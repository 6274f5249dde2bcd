"""``sharebus grant``: the conditional-share workflow, through the gateway with your system's API key.

The department you act for is your key's; ``--as DEPT`` is only checked against it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sharebus_cli.gateway_client import GatewayClient, add_credential_arguments, segment
from sharebus_core.grants import GrantState

# The gateway shows an automatic grant the router no longer honours as lapsed (sharebus_rules.routing.shown_state).
LAPSED_NOTE = (
    "lapsed: the bus gave it while the class was shared unconditionally, and nothing is delivered under it now; "
    "apply again for the provider's approval"
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grant = commands.add_parser(
        "grant", help="apply for, decide on and list grants (as your API key's department, via the gateway)"
    )
    sub = grant.add_subparsers(dest="action", required=True)

    def acting(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--as",
            dest="department",
            help="the department you expect to act for, e.g. TAX: refused unless it is your API key's",
        )
        p.add_argument("--json", action="store_true", help="print JSON")
        add_credential_arguments(p)
        return p

    apply = acting(sub.add_parser("apply", help="apply for a data class for one of your systems"))
    apply.add_argument("--consumer", required=True, help="your system that will receive the records")
    apply.add_argument("--class", dest="data_class", required=True)
    apply.add_argument("--purpose", required=True)
    apply.add_argument("--scenario", required=True, help="the usage scenario")
    apply.add_argument("--fields", default="", help="comma-separated; default: all the class allows")
    apply.add_argument("--mask", default="", help="comma-separated fields to receive masked")
    apply.add_argument("--valid-days", type=float, help="requested validity window")
    apply.add_argument(
        "--requester",
        default="",
        help="a person to record beside your key's system (the grant's requester is the system)",
    )
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


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _describe(view: dict[str, Any]) -> str:
    """One grant as the gateway shows it (``GrantView``)."""
    grant = view["grant"]
    overdue = " OVERDUE" if view.get("overdue") else ""
    until = grant.get("valid_until") or "-"
    masked = f" masked={','.join(grant['masked_fields'])}" if grant.get("masked_fields") else ""
    reason = f"\n    reason: {grant['reason']}" if grant.get("reason") else ""
    lapsed = f"\n    {LAPSED_NOTE}" if view["effective_state"] == GrantState.LAPSED else ""
    return (
        f"{grant['grant_id']}  {view['effective_state']}{overdue}  {grant['data_class']} {grant['provider']} -> "
        f"{grant['consumer']} ({grant['consumer_department']})  until {until}\n"
        f"    purpose: {grant['purpose']}; scenario: {grant['scenario']}"
        f"\n    fields: {','.join(grant['fields'])}{masked}{reason}{lapsed}"
    )


def _call(client: GatewayClient, args: argparse.Namespace) -> dict[str, Any] | list[dict[str, Any]]:
    if args.action == "list":
        params: dict[str, Any] = {"overdue": bool(args.overdue)}
        if args.state:
            params["state"] = args.state
        views: list[dict[str, Any]] = client.call("GET", "/v1/grants", params=params)
        return views
    if args.action == "apply":
        body = {
            "consumer": args.consumer,
            "data_class": args.data_class,
            "purpose": args.purpose,
            "scenario": args.scenario,
            "fields": _split(args.fields),
            "masked_fields": _split(args.mask),
            "valid_days": args.valid_days,
            "requester": args.requester or None,
        }
        view: dict[str, Any] = client.call("POST", "/v1/grants", body)
        return view
    path = f"/v1/grants/{segment(args.grant_id)}"
    if args.action == "show":
        view = client.call("GET", path)
    elif args.action == "approve":
        view = client.call("POST", f"{path}/approve", {"valid_days": args.valid_days, "reason": args.reason})
    else:
        view = client.call("POST", f"{path}/{args.action}", {"reason": args.reason})
    return view


def _what(args: argparse.Namespace) -> str:
    """What a listing asked for, to say that none is there (overdue: applications left unanswered)."""
    if args.overdue:
        return "overdue applications"
    return f"{args.state} grants" if args.state else "grants"


def run(args: argparse.Namespace) -> str:
    client = GatewayClient.from_args(args)
    who = client.acting_as(args.department)
    result = _call(client, args)
    if isinstance(result, list):
        if args.json:
            return json.dumps([v["grant"] for v in result], ensure_ascii=False, indent=2)
        return "\n".join(_describe(v) for v in result) or f"no {_what(args)} visible to {who.department}"
    return json.dumps(result["grant"], ensure_ascii=False, indent=2) if args.json else _describe(result)
