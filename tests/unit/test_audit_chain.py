"""The audit trail's format: blocks chained by their links over a Merkle root, the older single-event
links, and inclusion proofs; altering, removing or reordering anything is found."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharebus_core.audit_trail import (
    GENESIS,
    InclusionProof,
    audit_path,
    check_proof,
    event_hash,
    events_of,
    leaf_hash,
    link_hash,
    merkle_root,
    prove,
    root_from_path,
    seal_block,
    verify_links,
)


def event(i: int, consumer: str = "tax-levy", partition: int = 0) -> dict[str, Any]:
    """An event as the auditor makes it from facts partition ``partition``, chained in that audit partition."""
    return {"seq": i, "record_id": f"r{i}", "consumer": consumer, "decision": "deliver", "partition": partition}


def chain(sizes: list[int]) -> list[dict[str, Any]]:
    """Blocks of the given sizes, events numbered across them, linked from the genesis."""
    blocks, prev, seq = [], GENESIS, 0
    for size in sizes:
        block = seal_block([event(seq + i) for i in range(size)], prev)
        blocks.append(block)
        prev, seq = block["hash"], seq + size
    return blocks


def legacy(events: list[dict[str, Any]], prev: str = GENESIS) -> list[dict[str, Any]]:
    """The trail as it was written before blocks: each event its own link."""
    out = []
    for e in events:
        linked = {**e, "prev_hash": prev}
        linked["hash"] = event_hash(linked)
        out.append(linked)
        prev = linked["hash"]
    return out


def walk(records: list[dict[str, Any] | None]) -> tuple[int, str | None]:
    events, broken = verify_links(0, enumerate(records))
    return events, (str(broken) if broken else None)


def test_an_intact_chain_of_blocks_verifies_and_counts_its_events() -> None:
    blocks = chain([3, 1, 5])
    assert blocks[0]["prev_hash"] == GENESIS
    assert all(b["hash"] == link_hash(b) for b in blocks)
    assert walk(list(blocks)) == (9, None)
    assert walk([]) == (0, None)
    assert [e["seq"] for b in blocks for e in events_of(b)] == list(range(9))


def test_the_link_covers_the_root_but_not_the_events_themselves() -> None:
    block = chain([4])[0]
    assert link_hash({k: v for k, v in block.items() if k != "events"}) == block["hash"]
    assert block["root"] == merkle_root([leaf_hash(e) for e in block["events"]]).hex()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda b: b["events"][1].update(consumer="psb-case"), "do not match its Merkle root"),
        (lambda b: b["events"].reverse(), "do not match its Merkle root"),
        (lambda b: b["events"].pop(), "says 3 events but holds 2"),
        (lambda b: b.update(count=2, events=b["events"][:2]), "do not match its Merkle root"),
        (lambda b: b.update(root="0" * 64), "do not match its Merkle root"),
        (lambda b: b.update(prev_hash="1" * 64), "its link does not match its hash"),
    ],
)
def test_altering_a_block_is_found_at_that_block(change: Any, problem: str) -> None:
    records: list[dict[str, Any] | None] = list(chain([2, 3, 2]))
    target = records[1]
    assert target is not None
    change(target)
    events, broken = walk(records)
    assert events == 2
    assert broken is not None
    assert broken.startswith("partition 0, offset 1: ")
    assert problem in broken


def test_a_block_resealed_after_an_edit_is_found_at_the_next_block() -> None:
    records: list[dict[str, Any] | None] = list(chain([2, 2, 2]))
    original = records[1]
    assert original is not None
    records[1] = seal_block([{**e, "consumer": "psb-case"} for e in original["events"]], original["prev_hash"])
    assert "offset 2: its prev_hash does not match the record at offset 1" in (walk(records)[1] or "")


def test_removing_or_reordering_blocks_is_found() -> None:
    removed: list[dict[str, Any] | None] = list(chain([1, 1, 1]))
    del removed[1]
    assert "offset 1: its prev_hash does not match the record at offset 0" in (walk(removed)[1] or "")
    first_removed: list[dict[str, Any] | None] = [*chain([1, 1, 1])[1:]]
    assert "offset 0: its prev_hash does not match the record at the start" in (walk(first_removed)[1] or "")
    swapped: list[dict[str, Any] | None] = list(chain([1, 1, 1]))
    swapped[1], swapped[2] = swapped[2], swapped[1]
    assert "offset 1: its prev_hash" in (walk(swapped)[1] or "")


def test_a_foreign_record_is_found() -> None:
    records: list[dict[str, Any] | None] = [*chain([2]), None]
    assert walk(records) == (2, "partition 0, offset 1: the record is not an audit record (not JSON, or empty)")
    not_events: list[dict[str, Any] | None] = [{**chain([2])[0], "events": "x"}]
    assert "not a list of events" in (walk(not_events)[1] or "")


def test_a_trail_written_before_blocks_still_verifies_and_blocks_may_follow_it() -> None:
    old = legacy([event(0), event(1)])
    assert walk(list(old)) == (2, None)
    assert events_of(old[0]) == [old[0]]
    then = seal_block([event(2), event(3)], old[-1]["hash"])
    assert walk([*old, then]) == (4, None)
    altered = [{**old[0], "consumer": "psb-case"}, old[1]]
    assert "its content does not match its hash" in (walk(list(altered))[1] or "")


def test_events_of_anything_else_is_nothing() -> None:
    assert events_of(None) == []
    assert events_of([1, 2]) == []
    assert events_of({"kind": "block", "events": None}) == []


def anchored_here(proof: InclusionProof) -> InclusionProof:
    """The proof, with an anchor naming its own block as the head."""
    return proof.anchored_by((), (proof.offset, proof.link["hash"]), "c2lnbmVk")


@given(st.integers(min_value=1, max_value=70), st.data())
def test_every_event_of_a_block_has_a_proof_that_holds_and_only_for_itself(size: int, data: st.DataObject) -> None:
    block = seal_block([event(i, partition=3) for i in range(size)], GENESIS)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = anchored_here(prove(3, 17, block, index))
    assert proof.event == block["events"][index]
    assert "events" not in proof.link
    assert check_proof(proof) is None
    assert len(proof.path) <= max(1, (size - 1).bit_length())
    assert InclusionProof.from_dict(json.loads(json.dumps(proof.to_dict()))) == proof
    other = data.draw(st.integers(min_value=0, max_value=size - 1))
    if block["events"][other] != proof.event:
        swapped = anchored_here(InclusionProof(3, 17, block["events"][other], index, proof.path, proof.link))
        assert check_proof(swapped) == "the event and its path do not lead to the link's Merkle root"


def test_a_proof_holds_only_down_to_a_signed_head_through_unbroken_links() -> None:
    blocks = chain([3, 2, 4, 1])
    proof = prove(0, 0, blocks[0], 1)
    assert check_proof(proof) is not None
    assert "no signed anchor covers the block yet" in (check_proof(proof) or "")
    links = tuple((offset, {k: v for k, v in b.items() if k != "events"}) for offset, b in enumerate(blocks) if offset)
    head = (3, blocks[3]["hash"])
    assert check_proof(proof.anchored_by(links, head, "c2lnbmVk")) is None
    assert check_proof(proof.anchored_by(links[:2], (2, blocks[2]["hash"]), "c2lnbmVk")) is None
    gap = (links[0], links[2])
    assert "breaks at offset 3" in (check_proof(proof.anchored_by(gap, head, "c2lnbmVk")) or "")
    assert "does not end at the anchored head" in (check_proof(proof.anchored_by(links, (3, "f" * 64), "x")) or "")
    altered = (links[0], (2, {**links[1][1], "count": 9}), links[2])
    assert "breaks at offset 2" in (check_proof(proof.anchored_by(altered, head, "c2lnbmVk")) or "")


def test_a_record_written_before_blocks_has_a_proof_too() -> None:
    old = legacy([event(0), event(1)])
    proof = prove(0, 0, old[0], 0)
    assert proof.path == ()
    assert proof.event == old[0]
    assert check_proof(proof.anchored_by(((1, old[1]),), (1, old[1]["hash"]), "c2lnbmVk")) is None
    forged = InclusionProof(0, 0, {**old[0], "consumer": "psb-case"}, 0, (), old[0])
    assert check_proof(anchored_here(forged)) == "the event is not the record its link seals"


def test_a_proof_with_a_forged_link_or_path_does_not_hold() -> None:
    block = seal_block([event(i) for i in range(5)], GENESIS)
    proof = prove(0, 0, block, 2)
    forged_root = InclusionProof(0, 0, proof.event, 2, proof.path, {**proof.link, "root": "0" * 64})
    assert check_proof(anchored_here(forged_root)) == "the link does not match its hash"
    resealed_link = {**proof.link, "root": "0" * 64}
    resealed_link["hash"] = link_hash(resealed_link)
    assert check_proof(anchored_here(InclusionProof(0, 0, proof.event, 2, proof.path, resealed_link))) is not None
    flipped = tuple(("left" if side == "right" else "right", h) for side, h in proof.path)
    assert check_proof(anchored_here(InclusionProof(0, 0, proof.event, 2, flipped, proof.link))) is not None
    up = InclusionProof(0, 0, proof.event, 2, (("up", "00"),), proof.link)
    assert check_proof(anchored_here(up)) == "the path has a step that is neither left nor right"
    not_hex = InclusionProof(0, 0, proof.event, 2, (("left", "zz"),), proof.link)
    assert check_proof(anchored_here(not_hex)) == "the path holds a sibling that is not a hash"
    with pytest.raises(ValueError, match="not an inclusion proof"):
        InclusionProof.from_dict({"partition": 0})


def test_the_merkle_tree_has_rfc_6962_shape() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(3)]

    def node(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    assert merkle_root(leaves) == node(node(leaves[0], leaves[1]), leaves[2])
    assert audit_path(leaves, 2) == [("left", node(leaves[0], leaves[1]).hex())]
    assert root_from_path(leaves[0], audit_path(leaves, 0)) == merkle_root(leaves)
    assert leaf_hash({"a": 1}) == hashlib.sha256(b"\x00" + b'{"a":1}').digest()


def test_router_batches_expand_into_one_event_per_decision() -> None:
    from sharebus_audit.auditor import audit_events
    from sharebus_router.audit_facts import decision, encode_batch, record_fact

    facts = [
        record_fact(
            "AMR",
            "c1",
            "realtime",
            "t",
            p,
            o,
            b"k",
            [],
            [decision("a", None, True, None, b"x"), decision("b", "g", False, "no_grant")],
        )
        for p, o in ((0, 1), (1, 5), (0, 2))
    ]
    batches = dict(encode_batch(facts))
    assert sorted(batches) == [b"t:0", b"t:1"]
    events = audit_events(json.loads(batches[b"t:0"]), partition=2)
    assert [(e["source"]["offset"], e["consumer"], e["decision"]) for e in events] == [
        (1, "a", "deliver"),
        (1, "b", "deny"),
        (2, "a", "deliver"),
        (2, "b", "deny"),
    ]
    assert all(e["partition"] == 2 and e["time"].endswith("+00:00") for e in events)
    assert events[0]["payload_sha256"] == hashlib.sha256(b"x").hexdigest()


def test_a_record_that_names_a_field_twice_is_not_an_audit_record() -> None:
    # JSON readers disagree on a repeated name (Python keeps the last, others the first), and every leaf
    # is hashed from the decoded event: a block holding ``"consumer":"psb-case","consumer":"tax-levy"``
    # verified as the tax-levy delivery it was sealed as, while another reader saw psb-case.
    from sharebus_core.audit_trail import decode_record

    block = chain([2])[0]
    value = json.dumps(block, sort_keys=True, separators=(",", ":")).encode()
    assert decode_record(value) == block
    assert walk([decode_record(value)]) == (2, None)
    forged = value.replace(b'"consumer":"tax-levy"', b'"consumer":"psb-case","consumer":"tax-levy"', 1)
    assert forged != value
    assert decode_record(forged) is None
    assert walk([decode_record(forged)])[1] == (
        "partition 0, offset 0: the record is not an audit record (not JSON, or empty)"
    )
    twice_linked = value.replace(b'"prev_hash":', b'"prev_hash":"' + b"1" * 64 + b'","prev_hash":', 1)
    assert decode_record(twice_linked) is None


def test_a_partition_holding_another_partitions_chain_is_found() -> None:
    # Facts partition p is chained into audit partition p, and every event says which. A copy of
    # partition 0's chain written into partition 1 (empty, so no anchor names it) is a chain of its own
    # from the genesis: every delivery in it would be counted, and proved, twice.
    copied = chain([2, 3])
    assert verify_links(0, enumerate(copied)) == (5, None)
    events, broken = verify_links(1, enumerate(copied))
    assert events == 0
    assert str(broken).startswith("partition 1, offset 0: ")
    assert "chained from facts partition 0" in str(broken)
    old = legacy([event(0), event(1)])
    assert "chained from facts partition 0" in str(verify_links(2, enumerate(old))[1])
    unmarked = seal_block([{k: v for k, v in event(0).items() if k != "partition"}], GENESIS)
    assert "chained from facts partition None" in str(verify_links(0, [(0, unmarked)])[1])


def test_a_proof_names_the_partition_its_event_was_chained_in() -> None:
    # The anchored head a checker looks up is the one of the proof's partition: a proof moved to
    # another partition's number must not hold, whatever that partition's anchor says.
    block = seal_block([event(i, partition=2) for i in range(3)], GENESIS)
    proof = prove(2, 0, block, 1)
    assert check_proof(anchored_here(proof)) is None
    moved = InclusionProof(0, 0, proof.event, 1, proof.path, proof.link)
    assert check_proof(anchored_here(moved)) == "the event was chained in partition 2, not the proof's partition 0"
