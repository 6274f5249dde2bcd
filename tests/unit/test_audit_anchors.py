"""Signed anchors of the audit chains: what they vouch for, and the truncation and re-chaining they reveal."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharebus_audit.anchors import Anchor, AnchorProblem, ChainHead, check_anchors, open_anchors, sign_anchor
from sharebus_core.signing import Signer, Verifier
from sharebus_ops.audit import AnchorReport, Verification

AUDIT, ANCHORS = "ns.audit", "ns.audit.anchors"


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def anchor(*heads: tuple[int, int, str], at: float = 1_700_000_000.0) -> Anchor:
    return Anchor(AUDIT, at, tuple(ChainHead(p, o, h) for p, o, h in heads))


def test_an_anchor_round_trips_through_its_signed_record(signer: Signer) -> None:
    original = anchor((0, 41, "a" * 64), (2, 7, "b" * 64))
    key, value = sign_anchor(signer, original, ANCHORS)
    assert key == AUDIT.encode()
    anchors, bad = open_anchors(Verifier([signer.public_key]), ANCHORS, AUDIT, [(0, key, value)])
    assert anchors == [original]
    assert bad == []
    assert Anchor.decode(original.encode()) == original
    with pytest.raises(ValueError, match="not an anchor"):
        Anchor.decode(b'{"heads": []}')


def test_forged_unsigned_or_moved_anchors_are_reported_not_used(signer: Signer) -> None:
    verifier = Verifier([signer.public_key])
    key, value = sign_anchor(signer, anchor((0, 3, "a" * 64)), ANCHORS)
    stranger = Signer(Ed25519PrivateKey.generate())
    _, foreign = sign_anchor(stranger, anchor((0, 3, "f" * 64)), ANCHORS)
    doc = json.loads(value)
    doc["payload"] = doc["payload"][:-4] + "AAA="
    records = [
        (0, key, value),
        (1, key, anchor((0, 3, "c" * 64)).encode()),  # unsigned
        (2, key, foreign),  # signed by someone else
        (3, key, json.dumps(doc).encode()),  # tampered
        (4, b"ns.audit-copy", value),  # another topic's anchor: not ours, skipped
    ]
    anchors, bad = open_anchors(verifier, ANCHORS, AUDIT, records)
    assert len(anchors) == 1
    assert [(b.offset, b.reason) for b in bad] == [(1, "unsigned"), (2, "unknown_key"), (3, "bad_signature")]


def logs(**partitions: dict[int, str | None]) -> dict[int, dict[int, str | None]]:
    return {int(name[1:]): offsets for name, offsets in partitions.items()}


def test_heads_still_in_place_pass() -> None:
    current = logs(p0={0: "h0", 1: "h1", 3: "h3"}, p1={0: "x0"})
    assert check_anchors([anchor((0, 1, "h1")), anchor((0, 3, "h3"), (1, 0, "x0"))], current) == []


def test_a_partition_shorter_than_an_anchor_or_gone_is_truncated() -> None:
    current = logs(p0={0: "h0", 1: "h1"})
    problems = check_anchors([anchor((0, 1, "h1"), (1, 4, "y4")), anchor((0, 3, "h3"))], current)
    assert [(p.partition, p.offset, p.kind) for p in problems] == [(0, 3, "truncated"), (1, 4, "truncated")]
    assert "ends at offset 1" in problems[0].detail
    assert "is empty" in problems[1].detail
    assert str(problems[0]).startswith("partition 0 TRUNCATED at offset 3")
    # Records deleted from the start of the log (the chain check sees it too: no genesis link).
    [cut] = check_anchors([anchor((0, 0, "h0"))], logs(p0={5: "h5"}))
    assert (cut.kind, cut.offset) == ("truncated", 0)
    assert "now starts at offset 5" in cut.detail


def test_a_rewritten_partition_is_rechained() -> None:
    resealed = logs(p0={0: "r0", 1: "r1", 2: "r2", 3: "r3"})
    [problem] = check_anchors([anchor((0, 1, "h1")), anchor((0, 3, "h3"))], resealed)
    # One problem per partition: the lowest anchored offset, where the rewrite shows first.
    assert problem == AnchorProblem(0, 1, "rechained", problem.detail)
    assert "the event there has r1" in problem.detail
    gap = check_anchors([anchor((0, 2, "h2"))], logs(p0={0: "h0", 4: "h4"}))
    assert [(p.kind, p.offset) for p in gap] == [("rechained", 2)]
    not_an_event = check_anchors([anchor((0, 1, "h1"))], logs(p0={0: "h0", 1: None}))
    assert "not an audit event" in not_an_event[0].detail


def test_the_report_says_what_was_checked_and_fails_on_any_finding() -> None:
    clean = AnchorReport(2, anchor((0, 1, "h1")), (), ())
    result = Verification(10, 3, None, clean)
    assert result.intact
    assert str(result).splitlines() == [
        "audit chain intact: 10 events in 3 partition(s)",
        "anchors: 2 signed anchor(s) checked; newest 2023-11-14T22:13:20+00:00: every anchored head is in place "
        "(not truncated, not re-chained)",
    ]
    problem = AnchorProblem(1, 4, "truncated", "the partition is empty")
    broken = Verification(10, 3, None, AnchorReport(2, None, (), (problem,)))
    assert not broken.intact
    assert "  partition 1 TRUNCATED at offset 4: the partition is empty" in str(broken)
    none = Verification(0, 0, None, AnchorReport(0, None, (), ()))
    assert none.intact
    assert "anchors: none found" in str(none)
    assert Verification(5, 1, None).intact  # a copy, checked by its chain alone
