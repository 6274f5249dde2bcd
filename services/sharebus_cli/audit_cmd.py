"""``sharebus audit``: verify the chain, its Merkle roots and signed anchors; prove one delivery; ask who
received a class under which grant."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re

from sharebus_core.audit_fact import audited_text
from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_ops.audit import AnchorSource, verify, who_received
from sharebus_ops.audit_proof import Proofs, prove_delivery

_SPAN = re.compile(r"^(\d+)([hdw])$")
_WHEN = "a span back from now (12h, 7d, 2w) or an ISO time (2026-05-01, 2026-05-01T08:00, 2026-05-01T08:00+02:00)"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="verify and query the audit trail")
    sub = audit.add_subparsers(dest="action", required=True)
    check = sub.add_parser(
        "verify",
        help="walk the audit topic, report the first broken link, and check the signed anchors "
        "(a truncated or re-chained partition)",
    )
    check.add_argument(
        "--topic", help="another copy of the audit topic to check, by its chain only (default: the bus's own)"
    )
    proof = sub.add_parser(
        "prove",
        help="an inclusion proof for the delivery of one record: its audit event, the path to its block's "
        "Merkle root, and the block's chain link, checked together with the chain and the signed anchors "
        "(a delivery withdrawn later is reported as withdrawn, never proved as made)",
    )
    proof.add_argument("record_id", help="the record id (the sharebus-record-id header a subscriber received)")
    proof.add_argument("--consumer", help="only the delivery to this consumer system")
    proof.add_argument(
        "--class",
        dest="data_class",
        help="only the record of this data class (each provider chooses its record ids: needed when two did)",
    )
    proof.add_argument("--json", action="store_true", help="the proofs as JSON, for checking elsewhere")
    who = sub.add_parser(
        "who", help="who received records of a data class, under which grant (a delivery withdrawn later is none)"
    )
    who.add_argument("--class", dest="data_class", required=True)
    who.add_argument("--since", default="7d", type=_when, help=f"{_WHEN} (default: 7d)")
    who.add_argument("--until", type=_when, help=f"{_WHEN} (default: now)")
    who.add_argument("--json", action="store_true")


def _when(text: str) -> str:
    """``--since``'s and ``--until``'s type: a bad time is a usage error (exit 2), not a traceback."""
    try:
        parse_time(text, dt.datetime.now(dt.UTC))
    except (ValueError, OverflowError):  # OverflowError: a span past year 1 (99999999w)
        raise argparse.ArgumentTypeError(f"{text!r} is not {_WHEN}") from None
    return text


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    span = _SPAN.match(text)
    if span:
        amount, unit = int(span.group(1)), span.group(2)
        return now - dt.timedelta(hours=amount * {"h": 1, "d": 24, "w": 168}[unit])
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _of_class(proofs: Proofs, data_class: str | None) -> Proofs:
    if data_class is None:
        return proofs
    kept = tuple(p for p in proofs.proofs if p.event.get("data_class") == data_class)
    withdrawn = tuple(w for w in proofs.withdrawn if w.delivery.event.get("data_class") == data_class)
    named = frozenset(n for n in proofs.named if n[0] == data_class)
    return Proofs(proofs.record_id, kept, proofs.verification, withdrawn, named)


def _classes(proofs: Proofs, named: bool = False) -> list[str]:
    """The classes of the proofs; ``named``: also those of the record id's deliveries to other consumers
    than ``--consumer``, which, left out, hid that the id names records of more than one class."""
    events = [*(p.event for p in proofs.proofs), *(w.delivery.event for w in proofs.withdrawn)]
    found = {f"{e.get('data_class')} (provider {e.get('provider')})" for e in events}
    if named:
        found |= {f"{cls} (provider {provider})" for cls, provider in proofs.named}
    return sorted(found)


def _prove(args: argparse.Namespace, settings: BusSettings, topics: TopicNames) -> tuple[str, int]:
    source = AnchorSource(topics.audit_anchors, settings.audit_verifier())
    # The trail holds a long record id by its digest, as the router audited it.
    audited = audited_text(args.record_id) or args.record_id
    proofs = _of_class(prove_delivery(settings.kafka, topics.audit, audited, source, args.consumer), args.data_class)
    classes = _classes(proofs, named=True)
    if len(classes) > 1:
        # Each provider chooses its record ids (unique within its class only): a proof for one
        # provider's record must not pass for another's, which may never have been delivered.
        problem = f"record id {args.record_id} names records of {len(classes)} data classes: give --class"
        if args.json:
            body = {
                "record_id": proofs.record_id,
                "ok": False,
                "problem": problem,
                "classes": classes,
                "proofs": [],
                "withdrawn": [],
            }
            return json.dumps(body, ensure_ascii=False, indent=2), 5
        return "\n".join([problem, *(f"  {c}" for c in classes)]), 5
    if args.json:
        body = {
            "record_id": proofs.record_id,
            "ok": proofs.ok,
            "proofs": [p.to_dict() for p in proofs.proofs],
            # Deliveries decided and then withdrawn (never made): not proofs of a delivery.
            "withdrawn": [w.to_dict() for w in proofs.withdrawn],
        }
        return json.dumps(body, ensure_ascii=False, indent=2), 0 if proofs.ok else 5
    digest = [] if audited == args.record_id else [f"(the record id is audited by its digest, {audited})"]
    of_class = [f"record {args.record_id} of class {c}" for c in _classes(proofs)]
    return "\n".join([*digest, *of_class, *proofs.lines()]), 0 if proofs.ok else 5


def run(args: argparse.Namespace, settings: BusSettings) -> tuple[str, int]:
    topics = TopicNames(settings.namespace)
    topic = topics.audit
    if args.action == "verify":
        # The anchors name the topic they anchor: a copy (--topic) is checked by its chain alone.
        anchors = None if args.topic else AnchorSource(topics.audit_anchors, settings.audit_verifier())
        result = verify(settings.kafka, args.topic or topic, anchors)
        return str(result), 0 if result.intact else 5
    if args.action == "prove":
        return _prove(args, settings, topics)
    now = dt.datetime.now(dt.UTC)
    since = parse_time(args.since, now)
    until = parse_time(args.until, now) if args.until else None
    receipts = who_received(settings.kafka, topic, args.data_class, since, until)
    if args.json:
        return json.dumps([dataclasses.asdict(r) for r in receipts], ensure_ascii=False, indent=2), 0
    if not receipts:
        return f"nobody received {args.data_class} since {since.isoformat(timespec='seconds')}", 0
    lines = [f"{'consumer':<16} {'grant':<16} {'records':>8}  first .. last"]
    lines += [
        f"{r.consumer:<16} {r.grant_id or '(unconditional)':<16} {r.records:>8}  {r.first} .. {r.last}"
        for r in receipts
    ]
    return "\n".join(lines), 0
