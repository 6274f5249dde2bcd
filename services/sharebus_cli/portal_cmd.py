"""``sharebus portal account add|list|remove``: the officials who sign in to the department portal.

Accounts live in the portal's accounts file (``SHAREBUS_PORTAL_ACCOUNTS_FILE``), which only the
operator writes; it holds argon2id hashes, never a password. A password is read from standard input
(``--password-stdin``), asked for without echo, or generated and printed once (``--generate``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys

from sharebus_core.catalogue import Catalogue
from sharebus_portal.accounts import Account, AccountError, AccountStore, Role, new_account
from sharebus_portal.settings import PortalSettings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    portal = commands.add_parser("portal", help="the department portal's accounts")
    sub = portal.add_subparsers(dest="what", required=True)
    account = sub.add_parser("account", help="add, list and remove officials' accounts")
    actions = account.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an account, or replace one with the same name")
    add.add_argument("username", help="e.g. tax.requester (a-z, 0-9, '.', '_', '-')")
    add.add_argument("--department", required=True, help="the official's department, e.g. TAX")
    add.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=[r.value for r in Role],
        help="requester, approver or operator (the bureau); repeat for several",
    )
    add.add_argument("--name", help="the official's display name")
    how = add.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    how.add_argument("--generate", action="store_true", help="generate a password and print it once")
    listing = actions.add_parser("list", help="the accounts (never a password or hash)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    remove = actions.add_parser("remove", help="remove an account; its sessions end on their next page")
    remove.add_argument("username")


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password, and whether to print it (only a generated one is ever shown)."""
    if args.generate:
        return secrets.token_urlsafe(18), True
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first, False


def _describe(account: Account) -> str:
    roles = ", ".join(r.value for r in account.roles)
    name = f"  ({account.display_name})" if account.display_name else ""
    return f"{account.username:<24} {account.department:<8} {roles}{name}"


def run(args: argparse.Namespace, catalogue: Catalogue) -> tuple[str, int]:
    store = AccountStore(PortalSettings().accounts_file)
    try:
        if args.action == "add":
            password, show = _password(args)
            roles = [Role(r) for r in args.roles]
            account = new_account(catalogue, args.username, args.department, roles, password, args.name)
            store.put(account)
            shown = f"\npassword (shown once): {password}" if show else ""
            return f"added {_describe(account)} to {store.path}{shown}", 0
        if args.action == "remove":
            if store.remove(args.username):
                return f"removed {args.username}", 0
            return f"no account {args.username!r}", 4
        accounts = store.all()
        if args.json:
            fields = {"username", "department", "roles", "display_name"}
            return json.dumps([a.model_dump(mode="json", include=fields) for a in accounts], indent=2), 0
        return "\n".join(_describe(a) for a in accounts) or f"no accounts in {store.path}", 0
    except AccountError as exc:
        return f"sharebus: {exc}", 2
