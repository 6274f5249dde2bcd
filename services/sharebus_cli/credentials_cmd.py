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
from confluent_kafka.admin._acl import AclOperation

from sharebus_access.credentials import CredentialStatus, Issued, SystemCredentials
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
        ("revoke", "delete the credential: the system can no longer connect (also one the catalogue dropped)"),
        ("list", "which systems have a credential (never the passwords); marks systems the catalogue dropped"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--system", required=name != "list", help="the catalogue system, e.g. tax-levy")
        if name in ("issue", "rotate"):
            p.add_argument("--out", type=Path, help="write {username, password, bootstrap, ca_file} here (mode 0600)")
        if name == "list":
            p.add_argument("--json", action="store_true")


_NEED_ADMIN = (
    "These commands need the admin credential: point SHAREBUS_KAFKA_CREDENTIALS_FILE at it "
    "(the broker writes it under its data directory, credentials/sharebus-admin.json; "
    "var/kafka/credentials/sharebus-admin.json under make run), not at the operator's"
)


class NotAdmin(AccessError):
    """The credential works but may not read (or change) the cluster's users and ACLs."""

    exit_code = 7


def admin_access(settings: BusSettings, change: bool = False, timeout_s: float = 15.0) -> KafkaAccess:
    """The operator's admin access; these commands read and change users and ACLs, which only it may.

    The credential's rights on the cluster are asked first: with another principal's, the broker
    refuses the SCRAM listing (and confluent-kafka 2.16 then aborts the process) and answers the
    ACL listing with nothing, which would read as "every rule missing".
    """
    access = settings.kafka
    try:
        access.check()
    except KafkaAccessError as exc:
        raise AccessError(f"{exc}. {_NEED_ADMIN}") from exc
    if not access.secured:
        return access  # the plaintext debugging mode has no authorizer: nothing to ask
    # Held until the answer is in (a dropped client cancels its requests); warnings only, so that its
    # closing says nothing ("Purging 1 unserved events from background queue", an info line).
    client = access.admin({"log_level": 4})
    try:
        cluster = client.describe_cluster(include_authorized_operations=True, request_timeout=timeout_s)
        allowed = set(cluster.result().authorized_operations or ())
    except KafkaException as exc:
        raise AccessError(f"cannot ask the cluster what {access.principal} may do: {exc}") from exc
    needed = [AclOperation.DESCRIBE, *([AclOperation.ALTER] if change else [])]
    missing = [op.name for op in needed if op not in allowed]
    if missing:
        raise NotAdmin(f"{access.principal} may not do this (no {' or '.join(missing)} on the cluster). {_NEED_ADMIN}")
    return access


def _handed_out(system: str, issued: Issued, out: Path | None) -> str:
    if out is not None:
        write_credentials_file(out, issued.access)
        return str(out)
    return (
        f"credential for {system}: Kafka user {issued.username} (SCRAM-SHA-512)\n"
        f"password (shown once; the bus keeps no copy): {issued.password.get_secret_value()}"
    )


def _listing(statuses: list[CredentialStatus]) -> str:
    lines = [f"{'system':<24} {'Kafka user':<40} credential"]
    for s in statuses:
        held = f"SCRAM-SHA-512, {s.iterations} iterations" if s.issued else "none"
        if not s.in_catalogue:
            # Its ACLs are gone, but the password still logs in, and would act again for a system
            # given this code later: loud, in the listing the operator reads.
            held += f"  REMOVED from the catalogue: revoke it (sharebus credentials revoke --system {s.system})"
        lines.append(f"{s.system:<24} {s.username:<40} {held}")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> tuple[str, int]:
    if args.system and args.action in ("issue", "rotate"):
        catalogue.system(args.system)  # an unknown system is named before Kafka is asked anything
    # revoke and list also take a system the catalogue no longer has, while it still has a credential.
    access = admin_access(settings, change=args.action != "list")
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
    return _listing(statuses), 0
