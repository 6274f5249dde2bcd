"""``sharebus dlq``: list dead letters, and re-publish chosen ones after a fix."""

from __future__ import annotations

import argparse
import json

from sharebus_core.settings import BusSettings
from sharebus_core.topics import TopicNames
from sharebus_ops.dlq import DeadLetter, chosen, list_dead_letters, replay


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = commands.add_parser("dlq", help="inspect and replay the dead-letter topic")
    sub = dlq.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="dead letters, oldest first")
    replaying = sub.add_parser("replay", help="re-publish dead letters to their source topics")
    for p in (listing, replaying):
        p.add_argument("--reason", help="only this reason, e.g. unknown_schema_id, or quality (every rule)")
        p.add_argument("--class", dest="data_class", help="only this data class")
    listing.add_argument("--json", action="store_true")
    replaying.add_argument("positions", nargs="*", help="partition:offset of each letter (see dlq list)")
    replaying.add_argument("--all", action="store_true", help="every letter that matches --reason/--class")


def _row(d: DeadLetter) -> str:
    return (
        f"{d.position:>8}  {d.reason:<18} {d.data_class or '-':<17} from {d.source_topic}"
        f"[{d.source_partition}]@{d.source_offset}  key={d.key!r}\n          {d.detail}"
    )


def _none_of(every: list[DeadLetter]) -> str:
    """Why nothing is listed: an empty topic, or filters that match none of its letters (not "empty")."""
    if not every:
        return "the dead-letter topic is empty"
    return f"none of the {len(every)} dead letter(s) matches --reason/--class"


def run(args: argparse.Namespace, settings: BusSettings) -> str:
    topic = TopicNames(settings.namespace).dead_letter
    every = list_dead_letters(settings.kafka, topic)
    letters = chosen(every, args.reason, args.data_class)
    if args.action == "list":
        if args.json:
            return json.dumps(
                [
                    {
                        "position": d.position,
                        "reason": d.reason,
                        "detail": d.detail,
                        "data_class": d.data_class,
                        "source_topic": d.source_topic,
                        "source_partition": d.source_partition,
                        "source_offset": d.source_offset,
                        "key": (d.key or b"").decode("utf-8", "replace"),
                    }
                    for d in letters
                ],
                ensure_ascii=False,
                indent=2,
            )
        return "\n".join(_row(d) for d in letters) or _none_of(every)
    if args.all == bool(args.positions):
        raise SystemExit("sharebus dlq replay: give partition:offset positions, or --all (not both)")
    picked = letters if args.all else [d for d in letters if d.position in set(args.positions)]
    missing = set(args.positions) - {d.position for d in picked}
    if missing:
        raise SystemExit(f"sharebus dlq replay: no dead letter at {', '.join(sorted(missing))}")
    count = replay(settings.kafka, topic, picked)
    return f"re-published {count} dead letter(s) to their source topics"
