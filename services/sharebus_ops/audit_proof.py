"""``sharebus audit prove``: the inclusion proof of each delivery of one record, down to a signed anchor.

A proof holds only when the event is under its block's Merkle root, the links from the block lead to a
head that a signed anchor names, and the whole trail verifies (chains, roots, anchors). A block newer
than the newest anchor is not proved yet: the auditor anchors its heads every minute and when it stops.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sharebus_audit.anchors import Anchor, open_anchors
from sharebus_core.audit_trail import InclusionProof, check_proof, events_of, link_of, prove
from sharebus_core.kafka import KafkaAccess
from sharebus_ops.audit import AnchorSource, Verification, anchor_records, partitions, verify_read

Records = list[tuple[int, dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Proofs:
    """Every delivery of one record found in the trail, each with its proof, and the trail's state."""

    record_id: str
    proofs: tuple[InclusionProof, ...]
    verification: Verification

    @property
    def ok(self) -> bool:
        return bool(self.proofs) and self.verification.intact and all(check_proof(p) is None for p in self.proofs)

    def lines(self) -> list[str]:
        if not self.proofs:
            return [f"no delivery of record {self.record_id} is in the audit trail"]
        lines: list[str] = []
        for proof in self.proofs:
            event, problem = proof.event, check_proof(proof)
            anchored = "" if proof.anchored is None else f"; anchored at offset {proof.anchored[0]}"
            lines += [
                f"delivery of {self.record_id} to {event.get('consumer')} under grant "
                f"{event.get('grant_id') or '(unconditional)'} at {event.get('time')}",
                f"  record: partition {proof.partition}, offset {proof.offset}, event {proof.index} of "
                f"{proof.link.get('count', 1)}; link {str(proof.link.get('hash'))[:16]}...{anchored}",
                f"  path to the root: {len(proof.path)} sibling hash(es); "
                f"links to the anchored head: {len(proof.chain)}",
                "  proof: holds" if problem is None else f"  proof: DOES NOT HOLD ({problem})",
            ]
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


def prove_delivery(
    access: KafkaAccess, topic: str, record_id: str, source: AnchorSource, consumer: str | None = None
) -> Proofs:
    """A proof for every delivery of ``record_id`` (to ``consumer`` only, when given), anchored where a
    signed anchor covers it, and the verification of the whole trail the proofs are part of."""
    by_partition = partitions(access, topic)
    heads = _signed_heads(access, topic, source)
    proofs: list[InclusionProof] = []
    for partition in sorted(by_partition):
        records = by_partition[partition]
        for offset, record in records:
            for index, event in enumerate(events_of(record)):
                if event.get("record_id") != record_id or event.get("decision") != "deliver":
                    continue
                if record is not None and (consumer is None or event.get("consumer") == consumer):
                    proof = prove(partition, offset, record, index)
                    proofs.append(_anchor(proof, records, heads.get(partition, [])))
    return Proofs(record_id, tuple(proofs), verify_read(access, topic, source, by_partition))
