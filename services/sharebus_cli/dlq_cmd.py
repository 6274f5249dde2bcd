"""``sharebus dlq``: list dead letters, and re-publish chosen ones after a fix.

A replay sends the chosen letters in their records' original order (source topic, partition, offset),
which is each key's order; the dead-letter topic's own order is not it (three partitions, and a periodic
record is dead-lettered at its window's release, after later records of its key). A letter naming a source
record that an earlier letter names too (a repeat, after a crash or a retried release) goes once. A letter
whose record was replayed already, by any run and from any letter naming it (a copy in its source topic
carries ``sharebus-replayed-source`` naming the record), is skipped, so a replay that was interrupted is
resumed by running it again, and runs that pick other letters of one record (``--reason`` by ``--reason``)
send it once.

Finding the copies reads no source topic whole: a copy goes to its record's partition, after the record
(``sharebus_ops.dlq.replay``), so each source partition is read from the first chosen letter's record on.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping

from confluent_kafka import Message, TopicPartition

from sharebus_core.headers import header_list
from sharebus_core.kafka import KafkaAccess, UnreadableHeaders, message_headers
from sharebus_core.settings import BusSettings
from sharebus_core.topic_reader import RangeReader, partition_ends
from sharebus_core.topics import TopicNames
from sharebus_ops.dlq import REPLAYED_FROM, REPLAYED_SOURCE, DeadLetter, chosen, list_dead_letters, replay


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
    replaying.add_argument(
        "--again", action="store_true", help="also letters whose copy is already in their source topic"
    )


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
    return replay_in_order(settings.kafka, topic, picked, again=args.again, every=every)


def in_source_order(letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    """The letters in their records' order per source partition, each source record once (its first letter)."""
    first: dict[tuple[str, int, int], DeadLetter] = {}
    for letter in letters:
        first.setdefault((letter.source_topic, letter.source_partition, letter.source_offset), letter)
    return sorted(first.values(), key=lambda d: (d.source_topic, d.source_partition, d.source_offset))


# A partition of a source topic, and the first offset in it a copy of a chosen letter's record can be at.
Ranges = dict[tuple[str, int], int]


def source_copies(access: KafkaAccess, ranges: Ranges) -> Iterable[Message]:
    """The records of each source partition from its offset in ``ranges`` to its end (as of now)."""
    ends = partition_ends(access, [TopicPartition(t, p) for t, p in ranges])
    reader: RangeReader | None = None
    try:
        for (source, partition), start in sorted(ranges.items()):
            low, high = ends.get((source, partition), (0, 0))
            first = max(start, low)
            if first >= high:
                continue
            if reader is None:
                reader = RangeReader(access, source, partition, first, high, isolation="read_uncommitted")
            else:
                reader.reset(source, partition, first, high)
            while not reader.done:
                yield from reader.next_chunk()
    finally:
        if reader is not None:
            reader.close()


def copy_ranges(letters: Iterable[DeadLetter]) -> Ranges:
    """Where a copy of the letters' records can be: a copy goes to its record's partition, after the record."""
    ranges: Ranges = {}
    for d in letters:
        if d.source_topic and d.source_partition >= 0 and d.source_offset >= 0:
            where = (d.source_topic, d.source_partition)
            ranges[where] = min(ranges.get(where, d.source_offset + 1), d.source_offset + 1)
    return ranges


def replayed_already(
    access: KafkaAccess, topic: str, letters: list[DeadLetter], every: Iterable[DeadLetter] = ()
) -> set[str]:
    """The positions of the letters whose record was replayed already (a copy of it is in its source topic).

    A copy names its record (``sharebus-replayed-source``); one made before copies did names its letter only
    (``sharebus-replayed-from``), and that letter, among ``every`` letter of the topic, names the record.

    Anyone who may write a source topic can write those headers, so a copy counts only where a real one can
    be (``copy_names``): one naming a record counts for a record of its own topic and partition at a lower
    offset (a copy always goes to its record's partition, after it), and one naming a letter only for a
    letter of a record of its own topic. So a provider can at most make its own class's letters be skipped
    (as it could by publishing those records again itself), never another class's (docs/reference.md)."""
    by_position = {d.position: d for d in [*every, *letters]}
    replayed: set[str] = set()
    for msg in source_copies(access, copy_ranges(letters)):
        replayed.update(copy_names(msg, topic, by_position))
    return {d.position for d in letters if d.source in replayed}


def _origin(raw: str) -> tuple[str, int, int] | None:
    """``<topic>:<partition>:<offset>`` (a topic name has no colon), or None."""
    parts = raw.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


def copy_names(msg: Message, topic: str, letters: Mapping[str, DeadLetter]) -> set[str]:
    """The records (as ``DeadLetter.source`` names them) ``msg``, read from a source topic, may be a copy of.

    ``topic``: the dead-letter topic replayed; ``letters``: its letters by position. A record named must be
    of ``msg``'s own topic and partition, at a lower offset; a letter named (an older copy's header) must be
    a letter of a record of ``msg``'s own topic. Any other name is not a copy's (a forgery, or a mistake)."""
    here, partition, offset = msg.topic(), msg.partition(), msg.offset()
    names: set[str] = set()
    if here is None or partition is None or offset is None:
        return names
    try:
        headers = message_headers(msg)
    except UnreadableHeaders:
        return names  # a record whose headers cannot be read (a dead letter itself) names nothing
    for name, raw in header_list(headers):
        text = raw.decode("utf-8", "replace")
        if name == REPLAYED_SOURCE:
            origin = _origin(text)
            if origin is not None and origin[:2] == (here, partition) and origin[2] < offset:
                names.add(text)
        elif name == REPLAYED_FROM:
            dlq, _, position = text.partition(":")
            letter = letters.get(position) if dlq == topic else None
            if letter is not None and letter.source_topic == here:
                names.add(letter.source)
    return names


def replay_in_order(
    access: KafkaAccess,
    topic: str,
    picked: list[DeadLetter],
    *,
    again: bool = False,
    every: Iterable[DeadLetter] = (),
) -> str:
    ordered = in_source_order(picked)
    done = set() if again else replayed_already(access, topic, ordered, every)
    pending = [d for d in ordered if d.position not in done]
    count = replay(access, topic, pending)
    said = f"re-published {count} dead letter(s) to their source topics"
    if done:
        said += (
            f"; skipped {len(done)} whose record was replayed already ({', '.join(sorted(done))}; "
            "--again sends them anyway)"
        )
    overtaken = _overtaken(ordered, done)
    if overtaken and not again:
        # A copy Kafka refused while later ones of its key went out: its key's order is lost.
        said += f"; sent after a later letter of their key had been: {', '.join(overtaken)}"
    return said


def _overtaken(ordered: list[DeadLetter], done: set[str]) -> list[str]:
    """Pending letters (not in ``done``) of a key a later letter of which was replayed already."""
    last_done: dict[tuple[str, bytes | None], int] = {}
    for index, letter in enumerate(ordered):
        if letter.position in done:
            last_done[(letter.source_topic, letter.key)] = index
    return [
        d.position
        for index, d in enumerate(ordered)
        if d.position not in done and last_done.get((d.source_topic, d.key), -1) > index
    ]
