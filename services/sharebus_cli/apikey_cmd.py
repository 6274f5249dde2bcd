"""``sharebus apikey``: issue, list and revoke the gateway API keys of one system, and issue open-data keys.

Open-data keys belong to the public (``--system _public`` lists and revokes them)."""

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
    apply = sub.add_parser(
        "issue-open", help="issue a free open-data key on an application (who and why); the token is printed once"
    )
    apply.add_argument("--holder", required=True, help="who applies, e.g. a person's or a body's name")
    apply.add_argument("--purpose", required=True, help="what the data will be used for")
    apply.add_argument("--contact", help="how to reach the holder")
    apply.add_argument("--json", action="store_true", help="print JSON")


def _describe(key: ApiKey) -> str:
    state = f"revoked {key.revoked_at.isoformat(timespec='seconds')}" if key.revoked_at else "active"
    created = key.created_at.isoformat(timespec="seconds")
    if key.holder is not None:
        return f"{key.key_id}  open data: {key.holder} ({key.purpose})  created {created}  {state}"
    return f"{key.key_id}  {key.system} ({key.department})  created {created}  {state}"


def run(args: argparse.Namespace, settings: BusSettings, catalogue: Catalogue) -> str:
    topic = TopicNames(settings.namespace).api_keys
    store = KeyStore(catalogue, settings.kafka, topic, control=settings.control_keys())
    if args.action in ("issue", "issue-open"):
        if args.action == "issue":
            issued = store.issue(args.system)
        else:
            issued = store.issue_open_data(args.holder.strip(), args.purpose.strip(), args.contact)
        token = issued.token.get_secret_value()
        if args.json:
            return json.dumps({**issued.key.model_dump(mode="json", exclude={"key_hash"}), "token": token})
        return f"{_describe(issued.key)}\ntoken (shown once): {token}"
    keys = store.keys_of(args.system) if args.action == "list" else store.revoke(args.system, args.key_id)
    if args.json:
        return json.dumps([k.model_dump(mode="json", exclude={"key_hash"}) for k in keys], indent=2)
    return "\n".join(_describe(k) for k in keys) or f"no keys for {args.system}"
