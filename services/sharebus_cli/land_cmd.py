"""``sharebus land --system S --to URL``: keep a database up to date with what the system receives."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from sharebus_land.__main__ import quiet_http_clients
from sharebus_land.__main__ import run as run_sink
from sharebus_land.settings import LandSettings


def add_parser(commands: Any) -> None:
    land = commands.add_parser("land", help="land what a system receives in its own database, exactly once")
    land.add_argument("--system", required=True, help="the consumer system (the credential must be its own)")
    land.add_argument("--to", dest="database_url", help="sqlite:///file.db (default var/land/land.db) or postgresql://")
    land.add_argument(
        "--theme",
        action="append",
        default=[],
        metavar="NAME=CLASS,CLASS",
        help="land classes sharing a key in one wide table (repeatable)",
    )
    land.add_argument("--on-revoke", choices=["keep", "purge"], help="rows of a class whose grant ended (default keep)")
    land.add_argument("--plan", action="store_true", help="print the DDL for the classes received, apply nothing")
    land.add_argument("--once", action="store_true", help="land what is there now, then exit (scheduled jobs)")


def _themes(values: list[str]) -> dict[str, list[str]]:
    themes = {}
    for value in values:
        name, _, classes = value.partition("=")
        themes[name.strip()] = [c.strip() for c in classes.split(",") if c.strip()]
    return themes


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"system": args.system}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if args.theme:
        overrides["themes"] = _themes(args.theme)
    if args.on_revoke:
        overrides["on_revoke"] = args.on_revoke
    settings = LandSettings(**overrides)
    logging.basicConfig(level="INFO", format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    quiet_http_clients()
    return run_sink(settings, once=args.once, show_plan=args.plan)
