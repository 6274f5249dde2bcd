"""A delivery decided and then withdrawn (docs/audit.md, "A withdrawn delivery") is no delivery to any reader
of the trail: ``sharebus audit who``, ``sharebus audit prove`` and the disputes' delivery index (no Kafka: the
trail is built as the router and the auditor write it, and read from fakes)."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sharebus_audit.anchors import Anchor, ChainHead, sign_anchor
from sharebus_audit.facts import audit_events
from sharebus_cli import audit_cmd
from sharebus_core import headers as h
from sharebus_core.audit_trail import GENESIS, check_proof, encode_block, event_body
from sharebus_core.kafka import KafkaAccess
from sharebus_core.settings import BusSettings
from sharebus_core.signing import Signer, Verifier
from sharebus_disputes import NotReceived
from sharebus_disputes.deliveries import DeliveryIndex
from sharebus_ops import audit as ops_audit
from sharebus_ops.audit import AnchorSource, who_received
from sharebus_ops.audit_proof import prove_delivery
from sharebus_router.audit_facts import decision, record_fact, withdrawal
from tests.unit.test_disputes import offline_disputes

AUDIT, ANCHORS = "ns.audit", "ns.audit.anchors"
ROSTER = "301001001/000001"
SOURCE = "ns.src.roster"
REVOKED = "grant_revoked_before_release"


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

    def error(self) -> None:
        return None


def fact(offset: int, decisions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The router's fact of record ``r-<offset>`` (its origin: offset ``offset`` of the source partition 0)."""
    made = record_fact(
        "AMR", ROSTER, "periodic", SOURCE, 0, offset, None, [(h.RECORD_ID, f"r-{offset}".encode())], decisions
    )
    return {**made, **extra}


def delivered(offset: int, **extra: Any) -> dict[str, Any]:
    """Record ``r-<offset>`` delivered, by a window's facts, to tax-levy (grant g-r) and hrss-si (g-h)."""
    decisions = [decision("tax-levy", "g-r", True, None, b"x"), decision("hrss-si", "g-h", True, None, b"y")]
    return fact(offset, decisions, **extra)


def withdrawn(offset: int) -> dict[str, Any]:
    """A retry's withdrawal of tax-levy's delivery of ``r-<offset>`` (its grant g-r revoked since the facts)."""
    return fact(offset, [withdrawal("tax-levy", "g-r", REVOKED)])


def trail(*blocks: list[dict[str, Any]]) -> list[FakeMessage]:
    """Audit partition 0: one block per list of facts, chained from the genesis, as the auditor writes them."""
    messages, prev = [], GENESIS
    for offset, facts in enumerate(blocks):
        events = audit_events({"records": facts}, 0)
        prev, value = encode_block([event_body(e) for e in events], prev)
        messages.append(FakeMessage(0, offset, value))
    return messages


def window_withdrawn_for_tax_levy() -> list[FakeMessage]:
    """r-0 and r-1 audited as delivered to both; a retry withdraws tax-levy's (chained twice after a crash);
    then a backfill delivers r-0 to tax-levy, which no withdrawal undoes."""
    return trail(
        [delivered(0), delivered(1)],
        [withdrawn(0), withdrawn(1)],
        [withdrawn(0), withdrawn(1)],
        [fact(0, [decision("tax-levy", "g-r", True, None, b"x")], backfill="b-1")],
    )


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def read_from(monkeypatch: pytest.MonkeyPatch, audit: list[FakeMessage], signer: Signer | None = None) -> None:
    """The ops readers read ``audit`` as the audit topic and, with ``signer``, one anchor of its head."""
    anchors: list[FakeMessage] = []
    if signer is not None:
        head = audit[-1]
        link = json.loads(head.value())
        key, value = sign_anchor(signer, Anchor(AUDIT, 1.0, (ChainHead(0, head.offset(), link["hash"]),)), ANCHORS)
        anchors.append(FakeMessage(0, 0, value, key))
    topics = {AUDIT: audit, ANCHORS: anchors}
    monkeypatch.setattr(ops_audit, "_committed", lambda _access, topic: topics[topic])


def test_who_received_counts_no_withdrawn_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    read_from(monkeypatch, window_withdrawn_for_tax_levy())
    receipts = {(r.consumer, r.grant_id): r.records for r in who_received(cast(KafkaAccess, None), AUDIT, ROSTER)}
    # tax-levy received r-0 by the backfill alone; both periodic deliveries to it were withdrawn.
    assert receipts == {("hrss-si", "g-h"): 2, ("tax-levy", "g-r"): 1}


def test_who_received_leaves_out_a_consumer_whose_every_delivery_was_withdrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    read_from(monkeypatch, trail([delivered(0)], [withdrawn(0)]))
    receipts = who_received(cast(KafkaAccess, None), AUDIT, ROSTER)
    assert [(r.consumer, r.records) for r in receipts] == [("hrss-si", 1)]


def test_a_withdrawal_undoes_only_the_deliveries_chained_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another origin (r-1), another grant, or a delivery chained after the withdrawal: none is undone.
    other_grant = fact(0, [decision("tax-levy", "g-other", True, None, b"x")])
    read_from(monkeypatch, trail([delivered(1), other_grant], [withdrawn(0)], [delivered(0)]))
    receipts = {(r.consumer, r.grant_id): r.records for r in who_received(cast(KafkaAccess, None), AUDIT, ROSTER)}
    assert receipts == {("hrss-si", "g-h"): 2, ("tax-levy", "g-other"): 1, ("tax-levy", "g-r"): 2}


def prove(signer: Signer, record_id: str, consumer: str | None = None) -> Any:
    source = AnchorSource(ANCHORS, Verifier([signer.public_key]))
    return prove_delivery(cast(KafkaAccess, None), AUDIT, record_id, source, consumer)


def test_prove_proves_no_withdrawn_delivery_and_says_it_was_withdrawn(
    monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    read_from(monkeypatch, window_withdrawn_for_tax_levy(), signer)
    proofs = prove(signer, "r-1", "tax-levy")
    assert proofs.proofs == ()
    assert not proofs.ok  # nothing proved: the one delivery decided was withdrawn
    [gone] = proofs.withdrawn
    assert (gone.delivery.event["decision"], gone.withdrawal.event["decision"]) == ("deliver", "withdraw")
    assert (gone.delivery.offset, gone.withdrawal.offset) == (0, 1)  # the first withdrawal after it
    assert check_proof(gone.delivery) is None
    assert check_proof(gone.withdrawal) is None
    text = "\n".join(proofs.lines())
    assert "WITHDRAWN, never made" in text
    assert REVOKED in text
    assert "every one in the audit trail was withdrawn" in text

    everyone = prove(signer, "r-1")
    assert [p.event["consumer"] for p in everyone.proofs] == ["hrss-si"]
    assert [w.delivery.event["consumer"] for w in everyone.withdrawn] == ["tax-levy"]
    assert everyone.ok  # hrss-si's delivery stands and is proved; tax-levy's is reported as withdrawn

    # r-0 reached tax-levy by the backfill: that delivery is proved, the withdrawn one reported apart.
    backfilled = prove(signer, "r-0", "tax-levy")
    assert [(p.offset, p.event.get("backfill")) for p in backfilled.proofs] == [(3, "b-1")]
    assert [w.delivery.offset for w in backfilled.withdrawn] == [0]
    assert backfilled.ok


def run_prove(signer: Signer, *extra: str) -> tuple[str, int]:
    settings = SimpleNamespace(namespace="ns", kafka=None, audit_verifier=lambda: Verifier([signer.public_key]))
    parser = argparse.ArgumentParser()
    audit_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "prove", *extra])
    return audit_cmd.run(args, cast(BusSettings, settings))


def test_the_prove_command_refuses_a_withdrawn_delivery_naming_the_withdrawal(
    monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    read_from(monkeypatch, window_withdrawn_for_tax_levy(), signer)
    out, code = run_prove(signer, "r-1", "--consumer", "tax-levy")
    assert code == 5
    assert "proof: holds" in out  # of the two events: the decision and its withdrawal
    assert "delivery of r-1 to tax-levy under grant g-r decided at" in out
    assert f"({REVOKED}); it is not a delivery and is not proved as one" in out

    out, code = run_prove(signer, "r-1", "--consumer", "tax-levy", "--json")
    body = json.loads(out)
    assert (code, body["ok"], body["proofs"]) == (5, False, [])
    [gone] = body["withdrawn"]
    assert (gone["delivery"]["event"]["decision"], gone["withdrawal"]["event"]["reason"]) == ("deliver", REVOKED)

    out, code = run_prove(signer, "r-1", "--consumer", "hrss-si")
    assert code == 0
    assert "WITHDRAWN" not in out


def index_of(path: Path, messages: list[FakeMessage]) -> DeliveryIndex:
    index = DeliveryIndex(KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT"), AUDIT, path)
    for message in messages:  # one message a batch, and all in one: the same receipts
        index._apply(cast(Any, [message]), set())
    return index


def test_the_delivery_index_holds_no_withdrawn_delivery(tmp_path: Path) -> None:
    messages = window_withdrawn_for_tax_levy()
    one_by_one = index_of(tmp_path / "one.sqlite", messages)
    whole = DeliveryIndex(KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT"), AUDIT, tmp_path / "w")
    whole._apply(cast(Any, messages), set())
    try:
        for index in (one_by_one, whole):
            assert index.receipt("r-1", "tax-levy") is None  # withdrawn: never received
            assert index.receipt("r-1", "hrss-si") is not None
            assert index.receipt("r-0", "tax-levy") is not None  # received by the backfill
            assert index.positions() == {0: 4}
            assert index.indexed == 5  # the deliveries read (four by the window, one by the backfill)
    finally:
        one_by_one.stop()
        whole.stop()


def test_the_delivery_index_keeps_a_delivery_chained_after_a_withdrawal(tmp_path: Path) -> None:
    other_grant = fact(1, [decision("tax-levy", "g-other", True, None, b"x")])
    messages = trail([delivered(0), delivered(1), other_grant], [withdrawn(0), withdrawn(1)])
    index = index_of(tmp_path / "i.sqlite", messages)
    try:
        assert index.receipt("r-0", "tax-levy") is None
        assert index.receipt("r-1", "tax-levy") is not None  # under its other grant
        index._apply(cast(Any, trail([delivered(0)])[:1]), set())  # offset 0 again: a delivery after
        assert index.receipt("r-0", "tax-levy") is not None
    finally:
        index.stop()


def test_a_dispute_over_a_withdrawn_delivery_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = offline_disputes(tmp_path, monkeypatch, []).service
    try:
        service.index._apply(cast(Any, trail([delivered(0)], [withdrawn(0)])), set())
        with pytest.raises(NotReceived):
            service.open(system="tax-levy", department="TAX", record_id="r-0", fields=["name"], reason="wrong")
        opened = service.open(system="hrss-si", department="HRSS", record_id="r-0", fields=["name"], reason="wrong")
        assert (opened.type, opened.data_class) == ("opened", ROSTER)
    finally:
        service.index.stop()


def test_an_index_file_made_before_withdrawals_takes_its_rows_as_of_unknown_delivery(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE receipts (record_id TEXT NOT NULL, consumer TEXT NOT NULL, data_class TEXT NOT NULL, "
        "provider TEXT, delivered_at TEXT, PRIMARY KEY (record_id, consumer, data_class)) WITHOUT ROWID"
    )
    rows = [("r-0", "tax-levy", ROSTER, "AMR", "t0"), ("r-0", "hrss-si", ROSTER, "AMR", "t0")]
    old.executemany("INSERT INTO receipts VALUES (?, ?, ?, ?, ?)", rows)
    old.commit()
    old.close()
    index = DeliveryIndex(KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT"), AUDIT, path)
    try:
        assert index.receipt("r-0", "tax-levy") is not None
        index._apply(cast(Any, trail([withdrawn(0)])), set())
        assert index.receipt("r-0", "tax-levy") is None  # the withdrawal names that record, consumer and class
        assert index.receipt("r-0", "hrss-si") is not None
    finally:
        index.stop()
