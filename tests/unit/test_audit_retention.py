"""`sharebus audit verify` over a trail whose oldest records were removed by SHAREBUS_AUDITOR_RETENTION_HOURS.

With a finite retention Kafka deletes an audit partition's oldest segments: the first kept record links to
one that is gone. The chain cannot check that link, but it can check every one after it; whether the
removal was the retention's is judged from the retention the auditor signs into its anchors
(``sharebus_audit.retention``). No Kafka: the topics are read from fakes, the log starts given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharebus_audit.anchors import Anchor, ChainHead, open_anchors, sign_anchor
from sharebus_core.audit_trail import GENESIS, seal_block
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import Signer, Verifier
from sharebus_ops import audit as ops_audit
from sharebus_ops.audit import AnchorSource, Verification, verify_read
from tests.unit.test_auditor_resync import Fact, Harness

AUDIT, ANCHORS = "ns.audit", "ns.audit.anchors"
NOW = 1_800_000_000.0
DAY = 86_400.0
WEEK_H = 168


class FakeMessage:
    def __init__(self, partition: int, offset: int, value: bytes, key: bytes | None = None) -> None:
        self._partition, self._offset, self._value, self._key = partition, offset, value, key

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return self._key


def chain(partition: int, blocks: int) -> list[tuple[int, dict[str, Any]]]:
    """A partition's trail as the auditor writes it: one block per transaction, a commit marker after each
    (so the records sit at even offsets)."""
    trail, prev = [], GENESIS
    for n in range(blocks):
        event = {"partition": partition, "decision": "deliver", "record_id": f"r-{partition}-{n}"}
        block = seal_block([event], prev)
        trail.append((2 * n, block))
        prev = block["hash"]
    return trail


def at(trail: list[tuple[int, dict[str, Any]]], offset: int) -> dict[str, Any]:
    return next(record for o, record in trail if o == offset)


class Bus:
    """The audit and anchors topics as a reader sees them, and the partitions' log starts."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.partitions: dict[int, list[tuple[int, dict[str, Any] | None]]] = {}
        self.starts: dict[int, int] = {}
        self.anchors: list[FakeMessage] = []

    def anchor(self, when: float, retention_hours: int | None, *heads: tuple[int, int, str]) -> None:
        signed = Anchor(AUDIT, when, tuple(ChainHead(p, o, h) for p, o, h in heads), retention_hours)
        key, value = sign_anchor(self.signer, signed, ANCHORS)
        self.anchors.append(FakeMessage(0, len(self.anchors), value, key))

    def verify(self, monkeypatch: pytest.MonkeyPatch, anchored: bool = True) -> Verification:
        monkeypatch.setattr(ops_audit, "_committed", lambda _access, topic: {ANCHORS: self.anchors}[topic])
        source = AnchorSource(ANCHORS, Verifier([self.signer.public_key])) if anchored else None
        by_partition = {p: list(records) for p, records in self.partitions.items() if records}
        return verify_read(
            cast(KafkaAccess, None), AUDIT, source, by_partition, lambda p: self.starts.get(p, 0), lambda: NOW
        )


@pytest.fixture
def bus() -> Bus:
    return Bus(Signer(Ed25519PrivateKey.generate()))


def expired_head(bus: Bus, retention_hours: int | None) -> list[tuple[int, dict[str, Any]]]:
    """Partition 0 of six blocks whose first three (offsets 0, 2, 4) are gone, as retention leaves it: the
    anchors of those days are gone with them but one, signed ten days ago, and the newest anchor is recent."""
    trail = chain(0, 6)
    bus.partitions[0] = list(trail[3:])
    bus.starts[0] = 6
    bus.anchor(NOW - 10 * DAY, retention_hours, (0, 2, at(trail, 2)["hash"]))
    bus.anchor(NOW - 60, retention_hours, (0, 10, at(trail, 10)["hash"]))
    return trail


def test_a_trail_whose_head_the_signed_retention_removed_is_checked_from_its_first_kept_record(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired_head(bus, WEEK_H)
    result = bus.verify(monkeypatch)
    assert result.intact, str(result)
    assert (result.events, result.expired) == (3, ((0, 6),))
    assert "partition 0 starts at offset 6 (earlier events removed by retention" in str(result)
    assert "BROKEN" not in str(result)
    # The old anchor names a head that retention removed: not a truncation.
    assert result.anchors is not None
    assert result.anchors.ok


@pytest.mark.parametrize(
    ("retention", "why"),
    [
        (-1, "the auditor's signed anchors say the trail is kept forever"),
        (None, "no signed anchor states a retention"),  # anchors from before the field
    ],
)
def test_a_removed_head_of_a_trail_kept_forever_is_broken(
    bus: Bus, monkeypatch: pytest.MonkeyPatch, retention: int | None, why: str
) -> None:
    expired_head(bus, retention)
    result = bus.verify(monkeypatch)
    assert not result.intact
    assert result.broken is not None
    assert (result.broken.partition, result.broken.offset) == (0, 6)
    assert why in result.broken.problem
    assert "removed by hand, not by retention" in result.broken.problem


def test_a_copy_checked_by_its_chain_alone_cannot_say_its_head_expired(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired_head(bus, WEEK_H)
    result = bus.verify(monkeypatch, anchored=False)
    assert result.broken is not None
    assert "no signed anchor states a retention" in result.broken.problem


def test_a_first_record_linking_past_the_genesis_with_nothing_removed_is_broken(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired_head(bus, WEEK_H)
    bus.starts[0] = 0  # the log was never cut: that record was put there
    result = bus.verify(monkeypatch)
    assert result.broken is not None
    assert result.broken.offset == 6
    assert "its prev_hash does not match the record at the start of the partition" in result.broken.problem


def test_an_altered_event_after_the_expired_head_is_still_broken(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    expired_head(bus, WEEK_H)
    altered = json.loads(json.dumps(at(bus.partitions[0], 8)))  # type: ignore[arg-type]
    altered["events"][0]["record_id"] = "forged"
    bus.partitions[0] = [(o, altered if o == 8 else r) for o, r in bus.partitions[0]]
    result = bus.verify(monkeypatch)
    assert result.broken is not None
    assert result.broken.offset == 8
    assert "Merkle root" in result.broken.problem


def test_a_record_removed_after_the_expired_head_is_still_broken(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    expired_head(bus, WEEK_H)
    bus.partitions[0] = [(o, r) for o, r in bus.partitions[0] if o != 8]
    result = bus.verify(monkeypatch)
    assert result.broken is not None
    assert result.broken.offset == 10
    assert "prev_hash does not match the record at offset 6" in result.broken.problem


def test_records_younger_than_the_retention_removed_are_deleted_not_expired(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = expired_head(bus, WEEK_H)
    # An anchor of yesterday names offset 2 as the head: offset 4 was written after it, and is gone
    # though a week's retention keeps it.
    bus.anchor(NOW - DAY, WEEK_H, (0, 2, at(trail, 2)["hash"]))
    result = bus.verify(monkeypatch)
    assert result.broken is not None
    assert result.broken.offset == 6
    assert "deleted, not expired" in result.broken.problem


def test_an_anchor_naming_the_removed_predecessor_vouches_for_the_link(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = expired_head(bus, WEEK_H)
    # Signed an hour ago with offset 4 as the head: nothing after it is missing, and its hash is the
    # one the first kept record links to.
    bus.anchor(NOW - 3600, WEEK_H, (0, 4, at(trail, 4)["hash"]))
    assert bus.verify(monkeypatch).intact


def test_a_quiet_partition_emptied_by_the_retention_is_not_truncated(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    busy, quiet = chain(0, 2), chain(1, 3)
    bus.partitions[0] = list(busy)
    bus.starts[1] = 6  # every record of partition 1 expired
    bus.anchor(NOW - 20 * DAY, WEEK_H, (1, 2, at(quiet, 2)["hash"]))
    # Recent anchors still name its old head (an anchor holds every partition's head).
    bus.anchor(NOW - 60, WEEK_H, (0, 2, at(busy, 2)["hash"]), (1, 4, at(quiet, 4)["hash"]))
    result = bus.verify(monkeypatch)
    assert result.intact, str(result)
    assert result.expired == ((1, 6),)

    # Kept forever, the same emptied partition is cut by hand.
    forever = Bus(bus.signer)
    forever.partitions, forever.starts = bus.partitions, bus.starts
    forever.anchor(NOW - 60, -1, (0, 2, at(busy, 2)["hash"]), (1, 4, at(quiet, 4)["hash"]))
    assert not forever.verify(monkeypatch).intact


def test_an_anchor_signs_the_retention_it_states() -> None:
    stated = Anchor(AUDIT, NOW, (ChainHead(0, 4, "a" * 64),), 720)
    assert Anchor.decode(stated.encode()) == stated
    older = Anchor(AUDIT, NOW, (ChainHead(0, 4, "a" * 64),))
    assert b"retention_hours" not in older.encode()  # an anchor states nothing unless told
    doc = json.loads(stated.encode())
    doc["retention_hours"] = "forever"
    with pytest.raises(ValueError, match="not an anchor"):
        Anchor.decode(json.dumps(doc).encode())


def test_the_auditor_signs_its_retention_setting_into_its_anchors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHAREBUS_AUDITOR_RETENTION_HOURS", "720")
    harness = Harness(monkeypatch, tmp_path, fail_heads=0, fail=set())
    harness.script += [(True, [Fact(0)])]
    harness.auditor.run()  # chains the fact, then anchors the head at stop
    key = serialization.load_pem_private_key((tmp_path / "auditor.pem").read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    produced = harness.producers[-1].produced[-1]
    anchors, bad = open_anchors(Verifier([key.public_key()]), ANCHORS, AUDIT, [(0, AUDIT.encode(), produced)])
    assert bad == []
    assert [a.retention_hours for a in anchors] == [720]
