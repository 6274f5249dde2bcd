"""``sharebus``: run the bus, inspect the catalogue, and run the grant workflow."""

from __future__ import annotations

import argparse
import os
import sys

from sharebus_access.errors import AccessError
from sharebus_cli import (
    acl_cmd,
    apikey_cmd,
    audit_cmd,
    backfill_cmd,
    catalogue_cmd,
    credentials_cmd,
    dispute_cmd,
    dlq_cmd,
    freshness_cmd,
    grant_cmd,
    land_cmd,
    portal_cmd,
    report_cmd,
    stats_cmd,
)
from sharebus_cli.gateway_client import GatewayCallError
from sharebus_core.catalogue import CatalogueError, UnknownDataClass, UnknownSystem, load_catalogue
from sharebus_core.kafka import KafkaAccessError
from sharebus_core.settings import BusSettings
from sharebus_core.signing import SigningKeyError
from sharebus_core.topic_reader import TopicReadError
from sharebus_disputes import DisputeLogError
from sharebus_gateway.keys import KeyNotFound, KeysUnavailable
from sharebus_grants import GrantNotFound
from sharebus_ops.dlq import ReplayError
from sharebus_report import BadPeriod, ReportUnavailable
from sharebus_rules.dcat import DcatExportError
from sharebus_rules.grant_workflow import GrantRefused


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sharebus", description="A streaming data-exchange bus")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run broker, registry and router locally (Ctrl-C stops)")
    run.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run demo departments publishing and subscribing (default: on)",
    )
    run.add_argument(
        "--districts",
        type=int,
        choices=[0, 1],
        default=None,
        help="district buses federated beside the city bus (docs/federation.md; default: SHAREBUS_RUN_DISTRICTS or 0)",
    )
    catalogue = commands.add_parser("catalogue", help="check and browse the catalogue")
    sub = catalogue.add_subparsers(dest="action", required=True)
    sub.add_parser("check", help="load and validate the catalogue")
    sub.add_parser("classes", help="list data classes")
    sub.add_parser("departments", help="list departments and their systems")
    show = sub.add_parser("show", help="show one data class")
    show.add_argument("code")
    export = sub.add_parser("export", help="print the catalogue in a standard vocabulary (DCAT-AP 3, JSON-LD)")
    export.add_argument("--format", choices=["dcat"], default="dcat", help="dcat: DCAT-AP 3.0.1 as JSON-LD")
    export.add_argument(
        "--base-url", help="where the gateway is reached; IRIs are minted under it (default: the gateway's settings)"
    )
    export.add_argument("--publisher", help="the catalogue's publishing department (default: the gateway's setting)")
    catalogue_cmd.add_generate_parser(sub)
    grant_cmd.add_parser(commands)
    dispute_cmd.add_parser(commands)
    dlq_cmd.add_parser(commands)
    audit_cmd.add_parser(commands)
    freshness_cmd.add_parser(commands)
    backfill_cmd.add_parser(commands)
    stats_cmd.add_parser(commands)
    apikey_cmd.add_parser(commands)
    credentials_cmd.add_parser(commands)
    acl_cmd.add_parser(commands)
    land_cmd.add_parser(commands)
    portal_cmd.add_parser(commands)
    report_cmd.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        code = _command(argv)
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's last flush
    except BrokenPipeError:
        # `sharebus dlq list | head`: the reader has what it wanted. Stop without a traceback, and point
        # stdout at /dev/null so that the interpreter's own flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return code


def _command(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    settings = BusSettings()
    try:
        if args.command == "run":
            from sharebus_cli.run import run_bus

            return run_bus(demo=args.demo, districts=args.districts)
        if args.command == "land":
            return land_cmd.run(args)
        if args.command == "catalogue" and args.action == "generate":
            text, code = catalogue_cmd.generate(args)
            print(text, file=sys.stderr if code else sys.stdout)
            return code
        catalogue = load_catalogue(settings.catalogue_dir)
        if args.command == "audit":
            text, code = audit_cmd.run(args, settings)
            print(text)
            return code
        if args.command == "portal":
            text, code = portal_cmd.run(args, catalogue)
            print(text, file=sys.stderr if code else sys.stdout)
            return code
        if args.command == "report":
            text, code = report_cmd.run(args, catalogue)
            print(text)
            return code
        if args.command == "stats":
            print(stats_cmd.run(args, catalogue))
            return 0
        if args.command == "dlq":
            print(dlq_cmd.run(args, settings))
            return 0
        if args.command in ("credentials", "acl"):
            access_run = credentials_cmd.run if args.command == "credentials" else acl_cmd.run
            text, code = access_run(args, settings, catalogue)
            print(text)
            return code
        if args.command in ("freshness", "backfill"):
            text, code = (
                freshness_cmd.run(args, settings, catalogue) if args.command == "freshness" else backfill_cmd.run(args)
            )
            print(text)
            return code
        if args.command == "apikey":
            print(apikey_cmd.run(args, settings, catalogue))
        elif args.command == "grant":
            print(grant_cmd.run(args))
        elif args.command == "dispute":
            print(dispute_cmd.run(args, settings))
        elif args.action == "check":
            print(
                f"catalogue OK: {len(catalogue.departments)} departments, {len(catalogue.systems)} systems, "
                f"{len(catalogue.data_classes)} data classes, {len(catalogue.subscriptions)} subscriptions"
            )
        elif args.action == "classes":
            print(catalogue_cmd.list_classes(catalogue))
        elif args.action == "departments":
            print(catalogue_cmd.list_departments(catalogue))
        elif args.action == "export":
            print(catalogue_cmd.export(catalogue, args.base_url, args.publisher))
        else:
            print(catalogue_cmd.show_class(catalogue, args.code, settings.namespace))
    except GatewayCallError as exc:
        # Department actions go through the gateway: its refusal, as it said it.
        print(f"sharebus: {exc.detail}", file=sys.stderr)
        return exc.exit_code
    except (
        CatalogueError,
        SigningKeyError,
        BadPeriod,
        DcatExportError,
        report_cmd.OutputUnwritable,
        freshness_cmd.UnknownProvider,
    ) as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return 2
    except UnknownDataClass as exc:
        print(f"sharebus: {exc.args[0]}", file=sys.stderr)
        return 2
    except GrantRefused as exc:
        print(f"sharebus: refused: {exc}", file=sys.stderr)
        return 3
    except (
        stats_cmd.StatsUnavailable,
        KeysUnavailable,
        DisputeLogError,
        ReportUnavailable,
        TopicReadError,
        ReplayError,
    ) as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return 6
    except (UnknownSystem, KeyNotFound) as exc:
        print(f"sharebus: {exc.args[0]}", file=sys.stderr)
        return 4
    except GrantNotFound as exc:
        print(f"sharebus: {exc.args[0]}", file=sys.stderr)
        return 4
    except AccessError as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return exc.exit_code
    except KafkaAccessError as exc:
        # No usable Kafka credential (none set, an unreadable file, no CA): like a missing API key, 7.
        print(f"sharebus: {exc}", file=sys.stderr)
        return 7
    return 0


if __name__ == "__main__":
    sys.exit(main())
