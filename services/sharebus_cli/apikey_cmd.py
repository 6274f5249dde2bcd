"""``sharebus apikey``: issue, list and revoke the gateway API keys of one system."""

from __future__ import annotations

import argparse
import json

from sharebus_core.catalogue import Catalogue
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_gateway.keys import ApiKey, KeyStore


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apikey = commands.add_parser("apikey", help="issue, list and revoke gateway API keys of a system")
    sub = apikey.add_subparsers(dest="action", required=True)
    for name, text in (
        ("issue", "issue a new key; the token is printed once and stored only as a hash"),
        ("list", "the keys of a system (ids and dates, never tokens)"),
        ("revoke", "revoke one key (--key) or every active key of the system"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--system", required=True, help="the system the key acts for, e.g. tax-levy")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "revoke":
            p.add_argument("--key", dest="key_id", help="the key id (default: all active keys of the system)")


def _describe(key: ApiKey) -> str:
    state = f"revoked {key.revoked_at.isoformat(timespec='seconds')}" if key.revoked_at else "active"
    created = key.created_at.isoformat(timespec="seconds")
    return f"{key.key_id}  {key.system} ({key.department})  created {created}  {state}"


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> str:
    topic = TopicNames(settings.namespace).api_keys
    store = KeyStore(catalogue, settings.kafka, topic, control=settings.control_keys())
    if args.action == "issue":
        issued = store.issue(args.system)
        token = issued.token.get_secret_value()
        if args.json:
            return json.dumps({**issued.key.model_dump(mode="json", exclude={"key_hash"}), "token": token})
        return f"{_describe(issued.key)}\ntoken (shown once): {token}"
    keys = store.keys_of(args.system) if args.action == "list" else store.revoke(args.system, args.key_id)
    if args.json:
        return json.dumps([k.model_dump(mode="json", exclude={"key_hash"}) for k in keys], indent=2)
    return "\n".join(_describe(k) for k in keys) or f"no keys for {args.system}"
