"""``sharebus audit prove``: the inclusion proof of each delivery of one record, down to a signed anchor.

A proof holds only when the event is under its block's Merkle root, the links from the block lead to a
head that a signed anchor names, and the whole trail verifies (chains, roots, anchors). A block newer
than the newest anchor is not proved yet: the auditor anchors its heads every minute and when it stops.

A delivery withdrawn later in the trail (``withdraw``: a retried periodic release withheld the batch, the
grant having been revoked or having expired since its facts; ``sharebus_audit.withdrawals``) was never
made, so it is no delivery to prove: it is reported apart, as withdrawn, with the proofs of both events
(the decided delivery and its withdrawal), and a record whose every delivery was withdrawn is not proved.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sharebus_audit.anchors import Anchor, open_anchors
from sharebus_audit.withdrawals import DELIVER, WITHDRAW, WithdrawalKey, withdrawal_key
from sharebus_core.audit_trail import InclusionProof, check_proof, events_of, link_of, prove
from sharebus_core.kafka import KafkaAccess
from sharebus_ops.audit import AnchorSource, Verification, anchor_records, partitions, verify_read

Records = list[tuple[int, dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A delivery decided and then withdrawn (never made): the proofs of its ``deliver`` event and of the
    first ``withdraw`` event chained after it."""

    delivery: InclusionProof
    withdrawal: InclusionProof

    @property
    def holds(self) -> bool:
        return check_proof(self.delivery) is None and check_proof(self.withdrawal) is None

    def to_dict(self) -> dict[str, Any]:
        return {"delivery": self.delivery.to_dict(), "withdrawal": self.withdrawal.to_dict()}


def _proof_lines(proof: InclusionProof) -> list[str]:
    problem = check_proof(proof)
    anchored = "" if proof.anchored is None else f"; anchored at offset {proof.anchored[0]}"
    return [
        f"  record: partition {proof.partition}, offset {proof.offset}, event {proof.index} of "
        f"{proof.link.get('count', 1)}; link {str(proof.link.get('hash'))[:16]}...{anchored}",
        f"  path to the root: {len(proof.path)} sibling hash(es); links to the anchored head: {len(proof.chain)}",
        "  proof: holds" if problem is None else f"  proof: DOES NOT HOLD ({problem})",
    ]


def _to(event: dict[str, Any]) -> str:
    return f"to {event.get('consumer')} under grant {event.get('grant_id') or '(unconditional)'}"


@dataclass(frozen=True, slots=True)
class Proofs:
    """Every delivery of one record found in the trail, each with its proof, and the trail's state;
    ``withdrawn``: the deliveries decided and then withdrawn, which are not deliveries and not proved as such.
    """

    record_id: str
    proofs: tuple[InclusionProof, ...]
    verification: Verification
    withdrawn: tuple[Withdrawn, ...] = ()
    # (data class, provider) of every delivery of the record id, to any consumer: a record id names
    # records of more than one class whichever consumer the proofs are asked for.
    named: frozenset[tuple[str, str]] = frozenset()

    @property
    def ok(self) -> bool:
        """At least one delivery proved, every proof (a withdrawal's too) holding, and the trail intact."""
        return (
            bool(self.proofs)
            and self.verification.intact
            and all(check_proof(p) is None for p in self.proofs)
            and all(w.holds for w in self.withdrawn)
        )

    def lines(self) -> list[str]:
        if not self.proofs and not self.withdrawn:
            return [f"no delivery of record {self.record_id} is in the audit trail"]
        lines: list[str] = []
        for proof in self.proofs:
            event = proof.event
            lines += [f"delivery of {self.record_id} {_to(event)} at {event.get('time')}", *_proof_lines(proof)]
        for gone in self.withdrawn:
            decided, withdrawal = gone.delivery.event, gone.withdrawal.event
            lines += [
                f"WITHDRAWN, never made: the delivery of {self.record_id} {_to(decided)} decided at "
                f"{decided.get('time')} was withdrawn at {withdrawal.get('time')} ({withdrawal.get('reason')}); "
                "it is not a delivery and is not proved as one",
                "  the decided delivery:",
                *(f"  {line}" for line in _proof_lines(gone.delivery)),
                "  its withdrawal:",
                *(f"  {line}" for line in _proof_lines(gone.withdrawal)),
            ]
        if not self.proofs:
            lines.append(f"no delivery of record {self.record_id} stands: every one in the audit trail was withdrawn")
        return [*lines, str(self.verification)]


def _signed_heads(access: KafkaAccess, topic: str, source: AnchorSource) -> dict[int, list[tuple[int, str, str]]]:
    """Per audit partition, every (offset, hash, signed anchor record in base64) a valid anchor names."""
    heads: dict[int, list[tuple[int, str, str]]] = {}
    for offset, key, value in anchor_records(access, source):
        anchors: list[Anchor]
        anchors, _bad = open_anchors(source.verifier, source.topic, topic, [(offset, key, value)])
        for anchor in anchors:
            record = base64.b64encode(value or b"").decode()
            for head in anchor.heads:
                heads.setdefault(head.partition, []).append((head.offset, head.hash, record))
    return heads


def _anchor(proof: InclusionProof, records: Records, heads: list[tuple[int, str, str]]) -> InclusionProof:
    """The proof with the links from its block to the nearest anchored head at or after it, if any."""
    covering = sorted(h for h in heads if h[0] >= proof.offset)
    if not covering:
        return proof
    head_offset, head_hash, record = covering[0]
    chain = [(o, link_of(r)) for o, r in records if proof.offset < o <= head_offset and r is not None]
    return proof.anchored_by(chain, (head_offset, head_hash), record)


def _prove(partition: int, offset: int, record: dict[str, Any], index: int) -> InclusionProof | None:
    """``prove``, or None for a record whose events cannot be hashed (nested nearly as deep as the reader
    reads: decoded, but past the stack once hashed): no proof of it can hold, and ``verify_read`` reports
    the record as a broken link, so the proofs are not ok."""
    try:
        return prove(partition, offset, record, index)
    except (UnicodeError, RecursionError):
        return None


def prove_delivery(
    access: KafkaAccess, topic: str, record_id: str, source: AnchorSource, consumer: str | None = None
) -> Proofs:
    """A proof for every delivery of ``record_id`` (to ``consumer`` only, when given), anchored where a
    signed anchor covers it, and the verification of the whole trail the proofs are part of. A delivery
    a later ``withdraw`` undoes is in ``withdrawn``, with its withdrawal's proof, not in ``proofs``."""
    by_partition = partitions(access, topic)
    heads = _signed_heads(access, topic, source)
    proofs: list[InclusionProof] = []
    withdrawn: list[Withdrawn] = []
    named: set[tuple[str, str]] = set()
    for partition in sorted(by_partition):
        records = by_partition[partition]
        anchored = heads.get(partition, [])
        # The deliveries of this partition a withdrawal may still undo (chained before it), by key.
        pending: dict[WithdrawalKey, list[InclusionProof]] = {}
        for offset, record in records:
            for index, event in enumerate(events_of(record)):
                decision = event.get("decision")
                if event.get("record_id") != record_id or decision not in (DELIVER, WITHDRAW):
                    continue
                if record is None:
                    continue
                if decision == DELIVER:
                    named.add((str(event.get("data_class")), str(event.get("provider"))))
                if consumer is not None and event.get("consumer") != consumer:
                    continue
                unanchored = _prove(partition, offset, record, index)
                if unanchored is None:
                    continue
                proof = _anchor(unanchored, records, anchored)
                key = withdrawal_key(partition, event)
                if decision == WITHDRAW:
                    undone = pending.pop(key, []) if key is not None else []
                    withdrawn += [Withdrawn(made, proof) for made in undone]
                    continue
                if key is None:
                    proofs.append(proof)
                else:
                    pending.setdefault(key, []).append(proof)
        proofs += [proof for made in pending.values() for proof in made]
    proofs.sort(key=lambda p: (p.partition, p.offset, p.index))
    verification = verify_read(access, topic, source, by_partition)
    return Proofs(record_id, tuple(proofs), verification, tuple(withdrawn), frozenset(named))
