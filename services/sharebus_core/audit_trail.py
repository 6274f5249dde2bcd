"""The audit trail's record format: one chain link per block of events, over a Merkle tree. Pure: no Kafka.

The auditor seals the events of a batch of decision facts into one **block**, one Kafka record::

    {"kind": "block", "prev_hash": ..., "root": ..., "count": n, "events": [...], "hash": ...}

- ``root`` is the Merkle root (RFC 6962 shape: leaves ``SHA-256(0x00 || event)``, nodes
  ``SHA-256(0x01 || left || right)``, an odd tail promoted by the largest-power-of-two split) over the
  block's events in order, each as canonical JSON. It commits to every event and to their order.
- ``hash`` is the **link**: SHA-256 over the canonical JSON of the block without ``events`` and
  ``hash``, so over ``prev_hash``, ``root`` and ``count``. Chains and the signed anchors cover links, so
  they cover every root, and through the roots every event.
- A proof that one delivery is in the trail needs its event, the sibling hashes on the way to the root,
  and the link; not the rest of the block (``prove``/``check_proof``).

Trails written before blocks hold one event per record, chained by the event's own ``hash``; readers
take both (``events_of``), and ``verify_links`` walks a partition of either kind or both.

One block per sealed batch costs one Kafka record and one hash per leaf instead of one record per
decision: the auditor keeps up with the router's batches (issue 14's "audit sealed per batch").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson

GENESIS = "0" * 64
BLOCK = "block"


# Sorted keys; dataclasses, datetimes and subclasses of the JSON types, which orjson would write its own
# way, are refused, so that the reference encoder decides them as it always did.
CANONICAL_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def reference_canonical(body: Any) -> bytes:
    """The trail's canonical JSON by definition: sorted keys, no spaces, UTF-8 (not ``\\u`` escapes)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_SCALARS = frozenset({str, int, bool, type(None)})
_CONTAINERS = frozenset({dict, list, tuple})
_PLAIN = _SCALARS | _CONTAINERS


def plain(value: Any) -> bool:
    """Whether ``value`` holds only text, integers, booleans, null, lists and objects (exactly those
    types): no float, nothing else. Walked a level at a time, the types of a level collected in C
    (``map``), so a batch of facts costs a few passes rather than a Python call per container."""
    level = [value]
    while level:
        kinds = set(map(type, level))
        if not kinds <= _PLAIN:
            return False
        if not kinds & _CONTAINERS:
            return True
        level = list(chain.from_iterable(v.values() if type(v) is dict else v for v in level if type(v) in _CONTAINERS))
    return True


def floatless_canonical(body: Any) -> bytes:
    """``reference_canonical(body)`` for a ``plain`` body (no float), several times faster.

    orjson writes the very same bytes for text, integers, booleans, null, lists and objects (a property
    test holds it to that, tests/unit/test_audit_canonical.py) but not for every float (``1e-05`` as
    ``0.00001``, NaN as ``null``): the caller makes sure there is none (``plain``). What orjson
    refuses (an integer past 64 bits, a key that is not text, a lone surrogate, a nesting past 254)
    goes to the reference encoder, which decides as it always did.
    """
    try:
        return orjson.dumps(body, option=CANONICAL_OPTIONS)
    except orjson.JSONEncodeError:
        return reference_canonical(body)


def canonical_bytes(body: Any) -> bytes:
    return floatless_canonical(body) if plain(body) else reference_canonical(body)


def canonical(document: Mapping[str, Any], leave_out: frozenset[str] = frozenset({"hash"})) -> bytes:
    return canonical_bytes({k: v for k, v in document.items() if k not in leave_out})


def event_hash(event: Mapping[str, Any]) -> str:
    """The hash of a single-event link (the trail's format before blocks)."""
    return hashlib.sha256(canonical(event)).hexdigest()


def leaf_hash(event: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + event_body(event)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n > 1): RFC 6962's split of an unbalanced tree."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's root, built a level at a time: pairing neighbours and carrying an odd last node up
    unchanged gives the same tree as the recursive split (a unit test holds it to ``_split``'s),
    without slicing the leaves at every level."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    sha256 = hashlib.sha256
    while len(level) > 1:
        paired = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root_by_split(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's definition of the root, as written there: what ``merkle_root`` is tested against."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(merkle_root_by_split(leaves[:k]), merkle_root_by_split(leaves[k:]))


def audit_path(leaves: Sequence[bytes], index: int) -> list[tuple[str, str]]:
    """Sibling hashes from leaf ``index`` up to the root, each as ("left"|"right", hex), leaf side first."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*audit_path(leaves[:k], index), ("right", merkle_root(leaves[k:]).hex())]
    return [*audit_path(leaves[k:], index - k), ("left", merkle_root(leaves[:k]).hex())]


def root_from_path(leaf: bytes, path: Iterable[tuple[str, str]]) -> bytes:
    node = leaf
    for side, sibling in path:
        other = bytes.fromhex(sibling)
        node = _node(other, node) if side == "left" else _node(node, other)
    return node


def link_hash(block: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(block, frozenset({"hash", "events"}))).hexdigest()


def event_body(event: Mapping[str, Any]) -> bytes:
    """An event as a block holds it: canonical JSON, hashed as a leaf and written as is."""
    return canonical(event, frozenset())


def encode_block(bodies: Sequence[bytes], prev_hash: str) -> tuple[str, bytes]:
    """The link hash and the record value of the block of events ``bodies`` (``event_body`` each),
    linked after ``prev_hash``. The bodies are written as they are, not serialised again: a block of
    1,000 events costs one serialisation and one hash per event."""
    sha256 = hashlib.sha256
    root = merkle_root([sha256(b"\x00" + body).digest() for body in bodies]).hex()
    link: dict[str, Any] = {"kind": BLOCK, "prev_hash": prev_hash, "root": root, "count": len(bodies)}
    link["hash"] = link_hash(link)
    head = json.dumps(link, sort_keys=True, separators=(",", ":")).encode()
    return link["hash"], head[:-1] + b',"events":[' + b",".join(bodies) + b"]}"


def seal_block(events: Sequence[Mapping[str, Any]], prev_hash: str) -> dict[str, Any]:
    """The block of ``events`` linked after ``prev_hash``, as a reader decodes it."""
    _hash, value = encode_block([event_body(e) for e in events], prev_hash)
    block: dict[str, Any] = json.loads(value)
    return block


def is_block(record: Mapping[str, Any]) -> bool:
    return record.get("kind") == BLOCK


def events_of(record: Any) -> list[dict[str, Any]]:
    """The audit events one trail record holds: a block's events, or the record itself (one event)."""
    if not isinstance(record, dict):
        return []
    if is_block(record):
        events = record.get("events")
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
    return [record]


def _one_value_per_name(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object in which no name is given twice. JSON readers disagree on a repeated name (Python keeps
    the last value, others the first), and leaves are hashed from the decoded event: a repeated name
    would let a record verify as one thing and read as another elsewhere."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a name is given twice in one object")
    return found


# A UTF-16 surrogate's escape: the only way JSON bytes can hold a lone surrogate (raw, it is not UTF-8).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def decode_record(value: bytes | None) -> dict[str, Any] | None:
    """A trail record's JSON object, or None for anything else: a name repeated in any object, a lone
    surrogate (``\\ud800``: readers disagree on it too, refusing or replacing it, and it cannot be hashed
    as UTF-8), nesting deeper than the reader's stack."""
    try:
        record = json.loads(value or b"", object_pairs_hook=_one_value_per_name)
        if value and _SURROGATE_ESCAPE.search(value):
            # Rare (the auditor writes text as UTF-8, never escaped): a pair is one character by now, so
            # only a lone surrogate fails to encode.
            json.dumps(record, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def link_problem(record: Mapping[str, Any]) -> str | None:
    """Why a trail record does not hold together by itself (None: it does)."""
    try:
        return _link_problem(record)
    except (UnicodeError, RecursionError):
        # Text that is not UTF-8 (a lone surrogate) or nesting past the stack: not what the auditor wrote,
        # and no hash of it can be checked. decode_record refuses both; this holds for a record made else.
        return "its content cannot be hashed as canonical JSON (a lone surrogate, or nested too deep)"


def _link_problem(record: Mapping[str, Any]) -> str | None:
    if not is_block(record):
        return None if record.get("hash") == event_hash(record) else "its content does not match its hash (altered)"
    events = record.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return "the block's events are not a list of events"
    if record.get("count") != len(events):
        return f"the block says {record.get('count')} events but holds {len(events)} (an event was removed or added)"
    if record.get("root") != merkle_root([leaf_hash(e) for e in events]).hex():
        return "its events do not match its Merkle root (an event was altered, removed or reordered)"
    if record.get("hash") != link_hash(record):
        return "its link does not match its hash (the block was altered)"
    return None


def _partition_problem(partition: int, record: Mapping[str, Any]) -> str | None:
    """Facts partition p is chained into audit partition p, and every event names its facts partition:
    an event that names another was copied in (a chain of its own from the genesis, counted twice)."""
    for event in events_of(record):
        found = event.get("partition")
        if type(found) is not int or found != partition:
            return f"an event says it was chained from facts partition {found}, not {partition} (copied from another)"
    return None


@dataclass(frozen=True, slots=True)
class BrokenLink:
    partition: int
    offset: int
    problem: str

    def __str__(self) -> str:
        return f"partition {self.partition}, offset {self.offset}: {self.problem}"


def verify_links(
    partition: int, records: Iterable[tuple[int, Mapping[str, Any] | None]], first_prev: str = GENESIS
) -> tuple[int, BrokenLink | None]:
    """Walks one partition's (offset, record) pairs in offset order: how many events held, and the
    first broken link (None: intact). ``first_prev`` is what the first record must link to: the genesis,
    unless the caller has judged the records before it removed (``sharebus_audit.retention``)."""
    expected_prev, previous_offset, events = first_prev, None, 0
    for offset, record in records:
        if record is None:
            return events, BrokenLink(partition, offset, "the record is not an audit record (not JSON, or empty)")
        problem = link_problem(record) or _partition_problem(partition, record)
        if problem is not None:
            return events, BrokenLink(partition, offset, problem)
        if record.get("prev_hash") != expected_prev:
            after = f"offset {previous_offset}" if previous_offset is not None else "the start of the partition"
            return events, BrokenLink(
                partition,
                offset,
                f"its prev_hash does not match the record at {after} (a record was removed, inserted or reordered)",
            )
        expected_prev = str(record["hash"])
        previous_offset = offset
        events += len(events_of(record))
    return events, None


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """One event's place in the trail, down to a signed anchor.

    ``link`` is the block's link (the block without its events), or for a record written before blocks
    the record itself (the event is its own link). ``chain`` holds the (offset, link) of every record
    after it up to the anchored head ``anchored`` (offset, hash), which a signed anchor
    (``anchor_record``, the anchors topic's record, base64) names. Checking it needs no other record.
    """

    partition: int
    offset: int
    event: dict[str, Any]
    index: int
    path: tuple[tuple[str, str], ...]
    link: dict[str, Any]
    chain: tuple[tuple[int, dict[str, Any]], ...] = ()
    anchored: tuple[int, str] | None = None
    anchor_record: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "index": self.index,
            "event": self.event,
            "path": [list(step) for step in self.path],
            "link": self.link,
            "chain": [{"offset": offset, "link": link} for offset, link in self.chain],
            "anchored": None if self.anchored is None else {"offset": self.anchored[0], "hash": self.anchored[1]},
            "anchor_record": self.anchor_record,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> InclusionProof:
        """Raises ``ValueError`` for anything that is not a proof."""
        try:
            path = tuple((str(side), str(sibling)) for side, sibling in doc["path"])
            chain = tuple((int(step["offset"]), dict(step["link"])) for step in doc.get("chain", ()))
            head = doc.get("anchored")
            anchored = None if head is None else (int(head["offset"]), str(head["hash"]))
            partition, offset, index = int(doc["partition"]), int(doc["offset"]), int(doc["index"])
            record = doc.get("anchor_record")
            return cls(partition, offset, dict(doc["event"]), index, path, dict(doc["link"]), chain, anchored, record)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an inclusion proof: {exc!r}") from exc

    def anchored_by(
        self, chain: Sequence[tuple[int, dict[str, Any]]], head: tuple[int, str], record: str
    ) -> InclusionProof:
        return InclusionProof(
            self.partition, self.offset, self.event, self.index, self.path, self.link, tuple(chain), head, record
        )


def link_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a proof carries of a record: a block without its events, or a record of one event whole."""
    return {k: v for k, v in record.items() if k != "events"} if is_block(record) else dict(record)


def _sealed(link: Mapping[str, Any]) -> bool:
    expected = link_hash(link) if is_block(link) else event_hash(link)
    return link.get("hash") == expected


def prove(partition: int, offset: int, record: Mapping[str, Any], index: int) -> InclusionProof:
    """The proof of event ``index`` of a trail record, not yet anchored (``anchored_by`` adds that)."""
    events = events_of(record)
    path = audit_path([leaf_hash(e) for e in events], index) if is_block(record) else []
    return InclusionProof(partition, offset, events[index], index, tuple(path), link_of(record))


def _inclusion_problem(proof: InclusionProof) -> str | None:
    if not _sealed(proof.link):
        return "the link does not match its hash"
    chained_in = proof.event.get("partition")
    if type(chained_in) is not int or chained_in != proof.partition:
        # A checker takes the anchored head of the proof's partition: the event must be of that partition.
        return f"the event was chained in partition {chained_in}, not the proof's partition {proof.partition}"
    if not is_block(proof.link):
        # A record written before blocks: the event is the record, and its own link.
        return None if proof.event == proof.link and not proof.path else "the event is not the record its link seals"
    if any(side not in ("left", "right") for side, _ in proof.path):
        return "the path has a step that is neither left nor right"
    try:
        root = root_from_path(leaf_hash(proof.event), proof.path).hex()
    except ValueError:
        return "the path holds a sibling that is not a hash"
    if root != proof.link.get("root"):
        return "the event and its path do not lead to the link's Merkle root"
    return None


def check_proof(proof: InclusionProof) -> str | None:
    """Why the proof does not hold (None: the event is under its block's root, the block is sealed, and
    the links from it lead, unbroken, to the anchored head). The anchor's signature is the caller's to
    check (``anchor_record``, with the auditor's public key): this is pure."""
    problem = _inclusion_problem(proof)
    if problem is not None:
        return problem
    previous_offset, previous_hash = proof.offset, proof.link.get("hash")
    for offset, link in proof.chain:
        if offset <= previous_offset or not _sealed(link) or link.get("prev_hash") != previous_hash:
            return f"the chain from the block to the anchored head breaks at offset {offset}"
        previous_offset, previous_hash = offset, link.get("hash")
    if proof.anchored is None:
        return "no signed anchor covers the block yet (the auditor anchors its heads every minute and at stop)"
    if (previous_offset, previous_hash) != proof.anchored:
        return "the chain from the block does not end at the anchored head"
    return None
