"""Signed anchors of the audit chains, and the checks they allow. Pure: no Kafka.

The hash chain shows an event altered, removed or reordered *inside* a partition. It cannot show a
partition rewritten whole (the topic deleted and re-created with a re-sealed chain) or cut short at
its end: the rewritten chain is just as consistent. So the auditor periodically signs each
partition's chain head (offset and hash) with its own Ed25519 key onto ``<ns>.audit.anchors``.
Whoever rewrites the trail cannot sign new anchors, and every old anchor must still hold: the event
at each anchored offset must exist, with the anchored hash.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sharebus_core.signing import Signer, Verified, Verifier


@dataclass(frozen=True, slots=True)
class ChainHead:
    partition: int
    offset: int
    hash: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """The heads of an audit topic's chains at one moment, as the auditor committed them."""

    audit_topic: str
    anchored_at: float
    heads: tuple[ChainHead, ...]
    # The auditor's SHAREBUS_AUDITOR_RETENTION_HOURS (-1: forever), signed so that `audit verify` can
    # tell a trail whose head was removed by the retention it states from one cut by hand. None: an
    # anchor from before the field, which states nothing.
    retention_hours: int | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "audit_topic": self.audit_topic,
            "anchored_at": self.anchored_at,
            "heads": [{"partition": h.partition, "offset": h.offset, "hash": h.hash} for h in self.heads],
        }
        if self.retention_hours is not None:
            body["retention_hours"] = self.retention_hours
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Anchor:
        """Raises ``ValueError`` for anything that is not an anchor."""
        try:
            doc: Any = json.loads(payload)
            heads = tuple(ChainHead(int(h["partition"]), int(h["offset"]), str(h["hash"])) for h in doc["heads"])
            retention = _retention(doc.get("retention_hours"))
            return cls(str(doc["audit_topic"]), float(doc["anchored_at"]), heads, retention)
        except (KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not an anchor: {exc!r}") from exc

    @property
    def when(self) -> str:
        return dt.datetime.fromtimestamp(self.anchored_at, dt.UTC).isoformat(timespec="seconds")


def _retention(value: object) -> int | None:
    if value is not None and type(value) is not int:
        raise TypeError(f"retention_hours is {value!r}, not an integer")
    return value


def sign_anchor(signer: Signer, anchor: Anchor, anchors_topic: str) -> tuple[bytes, bytes]:
    """The (key, value) of the anchor record: keyed by the audit topic it anchors, signed for both."""
    key = anchor.audit_topic.encode()
    return key, signer.sign(anchor.encode(), topic=anchors_topic, key=key)


@dataclass(frozen=True, slots=True)
class BadAnchor:
    """A record on the anchors topic that is not a valid anchor signed by the auditor: itself a finding."""

    offset: int
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"anchor record at offset {self.offset} refused ({self.reason}): {self.detail}"


def open_anchors(
    verifier: Verifier, anchors_topic: str, audit_topic: str, records: Iterable[tuple[int, bytes | None, bytes | None]]
) -> tuple[list[Anchor], list[BadAnchor]]:
    """The valid anchors of ``audit_topic`` among the anchors topic's (offset, key, value) records, and the bad ones.

    Records keyed by another audit topic (a copy's, another namespace's) are skipped, not bad.
    """
    anchors: list[Anchor] = []
    bad: list[BadAnchor] = []
    for offset, key, value in records:
        if key != audit_topic.encode():
            continue
        outcome = verifier.verify(value, topic=anchors_topic, key=key)
        if not isinstance(outcome, Verified):
            bad.append(BadAnchor(offset, outcome.reason.value, outcome.detail))
            continue
        try:
            anchor = Anchor.decode(outcome.payload)
        except ValueError as exc:
            bad.append(BadAnchor(offset, "invalid_payload", str(exc)))
            continue
        if anchor.audit_topic != audit_topic:
            bad.append(BadAnchor(offset, "invalid_payload", f"anchors {anchor.audit_topic}, keyed {audit_topic}"))
            continue
        anchors.append(anchor)
    return anchors, bad


ProblemKind = Literal["truncated", "rechained"]


@dataclass(frozen=True, slots=True)
class AnchorProblem:
    partition: int
    offset: int
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"partition {self.partition} {self.kind.upper()} at offset {self.offset}: {self.detail}"


def _problem(head: ChainHead, when: str, hashes: Mapping[int, str | None]) -> AnchorProblem | None:
    p, o = head.partition, head.offset
    anchored = f"offset {o} (hash {head.hash[:12]}...) was anchored at {when}"
    if not hashes:
        return AnchorProblem(p, o, "truncated", f"the partition is empty, but {anchored}")
    first, last = min(hashes), max(hashes)
    if o > last:
        return AnchorProblem(p, o, "truncated", f"the partition ends at offset {last}, but {anchored}")
    if o < first:
        return AnchorProblem(p, o, "truncated", f"the partition now starts at offset {first}, but {anchored}")
    if o not in hashes:
        return AnchorProblem(
            p, o, "rechained", f"no audit event at the offset any more (the log was rewritten); {anchored}"
        )
    found = hashes[o]
    if found != head.hash:
        shown = f"{found[:12]}..." if found else "no hash (not an audit event)"
        return AnchorProblem(p, o, "rechained", f"the event there has {shown}; {anchored}")
    return None


def check_anchors(
    anchors: Iterable[Anchor],
    logs: Mapping[int, Mapping[int, str | None]],
    expired: Mapping[int, int] | None = None,
) -> list[AnchorProblem]:
    """Every anchored head against the partitions as they are now (partition -> offset -> event hash).

    ``expired`` maps a partition to the offset its kept chain starts at when the records before it were
    judged removed by retention (``sharebus_audit.retention``): a head below it is gone by that judgement,
    not truncated. One problem per partition at most: the one at the lowest anchored offset, where the
    damage shows first.
    """
    found: dict[int, AnchorProblem] = {}
    expired = expired or {}
    for anchor in anchors:
        for head in anchor.heads:
            if head.offset < expired.get(head.partition, 0):
                continue
            problem = _problem(head, anchor.when, logs.get(head.partition, {}))
            if problem is None:
                continue
            known = found.get(head.partition)
            if known is None or problem.offset < known.offset:
                found[head.partition] = problem
    return [found[p] for p in sorted(found)]
