"""``sharebus credentials``: issue, rotate, revoke and list the Kafka credentials of catalogue systems.

Runs with the admin credential (``SHAREBUS_KAFKA_CREDENTIALS_FILE``). A password is shown once, or
written to a 0600 file with ``--out``; the bus never stores it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from confluent_kafka import KafkaException

from sharebus_access.credentials import Issued, SystemCredentials
from sharebus_access.errors import AccessError
from sharebus_core.catalogue import Catalogue
from sharebus_core.kafka import KafkaAccess, KafkaAccessError, write_credentials_file
from sharebus_core.settings import BusSettings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    credentials = commands.add_parser("credentials", help="issue, rotate, revoke and list systems' Kafka credentials")
    sub = credentials.add_subparsers(dest="action", required=True)
    for name, text in (
        ("issue", "a first credential; the password is shown once (or written with --out)"),
        ("rotate", "a new password; the old one stops working within seconds"),
        ("revoke", "delete the credential: the system can no longer connect"),
        ("list", "which systems have a credential (never the passwords)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--system", required=name != "list", help="the catalogue system, e.g. tax-levy")
        if name in ("issue", "rotate"):
            p.add_argument("--out", type=Path, help="write {username, password, bootstrap, ca_file} here (mode 0600)")
        if name == "list":
            p.add_argument("--json", action="store_true")


def admin_access(settings: BusSettings) -> KafkaAccess:
    """The operator's admin access; these commands change users and ACLs, which only it may."""
    access = settings.kafka
    try:
        access.check()
    except KafkaAccessError as exc:
        raise AccessError(
            f"{exc}. These commands need the admin credential: point SHAREBUS_KAFKA_CREDENTIALS_FILE at it "
            "(the broker writes it under its data directory, credentials/sharebus-admin.json)"
        ) from exc
    return access


def _handed_out(system: str, issued: Issued, out: Path | None) -> str:
    if out is not None:
        write_credentials_file(out, issued.access)
        return str(out)
    return (
        f"credential for {system}: Kafka user {issued.username} (SCRAM-SHA-512)\n"
        f"password (shown once; the bus keeps no copy): {issued.password.get_secret_value()}"
    )


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> tuple[str, int]:
    if args.system:
        catalogue.system(args.system)  # an unknown system is named before Kafka is asked anything
    access = admin_access(settings)
    try:
        credentials = SystemCredentials(access, catalogue, settings.namespace)
    except KafkaException as exc:
        raise AccessError(f"cannot make a Kafka admin client: {exc}") from exc
    if args.action == "issue":
        return _handed_out(args.system, credentials.issue(args.system), args.out), 0
    if args.action == "rotate":
        return _handed_out(args.system, credentials.rotate(args.system), args.out), 0
    if args.action == "revoke":
        credentials.revoke(args.system)
        return f"revoked the credential of {args.system}: new connections are refused now, open ones within seconds", 0
    statuses = credentials.list([args.system] if args.system else None)
    if args.json:
        return json.dumps([dataclasses.asdict(s) for s in statuses], indent=2), 0
    lines = [f"{'system':<24} {'Kafka user':<40} credential"]
    lines += [
        f"{s.system:<24} {s.username:<40} {f'SCRAM-SHA-512, {s.iterations} iterations' if s.issued else 'none'}"
        for s in statuses
    ]
    return "\n".join(lines), 0
