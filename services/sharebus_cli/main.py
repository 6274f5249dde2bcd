"""``sharebus``: run the bus, inspect the catalogue, and run the grant workflow."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from sharebus_access.errors import AccessError
from sharebus_cli.gateway_client import GatewayCallError
from sharebus_core.catalogue import CatalogueError, UnknownDataClass, UnknownSystem, load_catalogue
from sharebus_core.kafka import KafkaAccessError
from sharebus_core.settings import BusSettings
from sharebus_core.signing import SigningKeyError
from sharebus_core.topic_reader import TopicReadError
from sharebus_grants import GrantNotFound
from sharebus_rules.grant_workflow import GrantRefused

# Each command's module, imported only when that command runs (or for --help): together they import
# FastAPI, SQLAlchemy, the gateway, the portal and the report, seconds of start-up on a busy machine
# that a refused `sharebus backfill request` spent before it even asked the gateway.
COMMANDS = (
    "grant",
    "dispute",
    "dlq",
    "audit",
    "freshness",
    "backfill",
    "stats",
    "apikey",
    "credentials",
    "acl",
    "land",
    "portal",
    "report",
    "status",
)


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"sharebus_cli.{name}_cmd")


def _loaded(*names: str) -> tuple[type[BaseException], ...]:
    """The exception classes named ``module:Class`` whose module this command imported.

    A command imports its own modules only, and a class whose module was never imported cannot have
    been raised: catching it needs no import, and its exit code stays what it was.
    """
    found = []
    for name in names:
        module_name, _, class_name = name.partition(":")
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(getattr(module, class_name))
    return tuple(found)


def _command_word(argv: list[str]) -> str | None:
    """The command ``argv`` names, if it names one of ``COMMANDS`` (``None``: help, or a mistake)."""
    for word in argv:
        if word.startswith("-"):
            return None
        return word if word in (*COMMANDS, "catalogue") else None
    return None


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line (``only=None``), or the commands' names with ``only``'s arguments."""
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
    if only in (None, "catalogue"):
        command_module("catalogue").add_generate_parser(sub)
    for name in COMMANDS:
        if only is None or name == only:
            command_module(name).add_parser(commands)
        else:
            commands.add_parser(name)  # known, so that the word is taken as a command; never parsed here
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
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(_command_word(argv)).parse_args(argv)
    try:
        return _dispatch(args)
    except GatewayCallError as exc:
        # Department actions go through the gateway: its refusal, as it said it.
        print(f"sharebus: {exc.detail}", file=sys.stderr)
        return exc.exit_code
    except (CatalogueError, SigningKeyError) as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return 2
    except _loaded(
        "sharebus_report:BadPeriod",
        "sharebus_rules.dcat:DcatExportError",
        "sharebus_cli.report_cmd:OutputUnwritable",
        "sharebus_cli.freshness_cmd:UnknownProvider",
        "sharebus_cli.run_state:RunStateError",
    ) as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return 2
    except UnknownDataClass as exc:
        print(f"sharebus: {exc.args[0]}", file=sys.stderr)
        return 2
    except GrantRefused as exc:
        print(f"sharebus: refused: {exc}", file=sys.stderr)
        return 3
    except TopicReadError as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return 6
    except _loaded(
        "sharebus_cli.stats_cmd:StatsUnavailable",
        "sharebus_gateway.keys:KeysUnavailable",
        "sharebus_disputes:DisputeLogError",
        "sharebus_report:ReportUnavailable",
        "sharebus_ops.dlq:ReplayError",
    ) as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return 6
    except (UnknownSystem, GrantNotFound) as exc:
        print(f"sharebus: {exc.args[0]}", file=sys.stderr)
        return 4
    except _loaded("sharebus_gateway.keys:KeyNotFound") as exc:
        print(f"sharebus: {exc.args[0]}", file=sys.stderr)
        return 4
    except AccessError as exc:
        print(f"sharebus: {exc}", file=sys.stderr)
        return exc.exit_code
    except KafkaAccessError as exc:
        # No usable Kafka credential (none set, an unreadable file, no CA): like a missing API key, 7.
        print(f"sharebus: {exc}", file=sys.stderr)
        return 7


def _dispatch(args: argparse.Namespace) -> int:
    settings = BusSettings()
    if args.command == "run":
        from sharebus_cli.run import run_bus

        return run_bus(demo=args.demo, districts=args.districts)
    if args.command == "land":
        code: int = command_module("land").run(args)
        return code
    if args.command == "catalogue":
        return _catalogue(args, settings)
    if args.command == "status":
        text, code = command_module("status").run(args)
        print(text)
        return int(code)
    catalogue = load_catalogue(settings.catalogue_dir)
    module = command_module(args.command)
    if args.command in ("audit", "report"):
        text, code = module.run(args, settings) if args.command == "audit" else module.run(args, catalogue)
        print(text)
        return code
    if args.command == "portal":
        text, code = module.run(args, catalogue)
        print(text, file=sys.stderr if code else sys.stdout)
        return code
    if args.command in ("credentials", "acl", "freshness"):
        text, code = module.run(args, settings, catalogue)
        print(text)
        return code
    if args.command == "backfill":
        text, code = module.run(args)
        print(text)
        return code
    if args.command in ("stats", "apikey"):
        print(module.run(args, catalogue) if args.command == "stats" else module.run(args, settings, catalogue))
    elif args.command in ("dlq", "dispute"):
        print(module.run(args, settings))
    else:
        print(module.run(args))  # grant
    return 0


def _catalogue(args: argparse.Namespace, settings: BusSettings) -> int:
    catalogue_cmd = command_module("catalogue")
    if args.action == "generate":
        text, code = catalogue_cmd.generate(args)
        print(text, file=sys.stderr if code else sys.stdout)
        return int(code)
    catalogue = load_catalogue(settings.catalogue_dir)
    if args.action == "check":
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
