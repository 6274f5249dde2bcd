"""``sharebus audit prove R --consumer X`` when R names records of two classes: exit 5 asking for --class
(docs/audit.md), as without --consumer; before, the consumer filter ran first and hid the other class."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace
from typing import Any

import pytest

from sharebus_cli import audit_cmd
from sharebus_core.audit_trail import GENESIS, BrokenLink, seal_block
from sharebus_ops import audit_proof
from sharebus_ops.audit import Verification


def _event(cls: str, provider: str, consumer: str) -> dict[str, Any]:
    return {
        "record_id": "R-1",
        "data_class": cls,
        "provider": provider,
        "consumer": consumer,
        "grant_id": None,
        "decision": "deliver",
        "reason": None,
        "mode": "realtime",
        "time": "2026-12-01T00:00:00.000+00:00",
        "source": {"topic": f"t.{cls}", "partition": 0, "offset": 1},
        "partition": 0,
    }


def _prove(monkeypatch: pytest.MonkeyPatch, consumer: str | None, data_class: str | None) -> tuple[Any, int]:
    """Proves R-1 over one anchored block: class A's R-1 delivered to X, class B's R-1 to Y only."""
    block = seal_block([_event("A", "PA", "X"), _event("B", "PB", "Y")], GENESIS)
    monkeypatch.setattr(audit_proof, "partitions", lambda *_a: {0: [(0, block)]})
    monkeypatch.setattr(audit_proof, "_signed_heads", lambda *_a: {0: [(0, block["hash"], "c2lnbmVk")]})
    monkeypatch.setattr(audit_proof, "verify_read", lambda *_a: Verification(2, 1, None, None))
    settings = SimpleNamespace(kafka=None, audit_verifier=lambda: None)
    topics = SimpleNamespace(audit="a", audit_anchors="aa")
    args = argparse.Namespace(record_id="R-1", consumer=consumer, data_class=data_class, json=True)
    out, code = audit_cmd._prove(args, settings, topics)  # type: ignore[arg-type]
    return json.loads(out), code


@pytest.mark.parametrize("consumer", ["X", "Y", None])
def test_prove_with_or_without_consumer_refuses_an_id_naming_two_classes(
    monkeypatch: pytest.MonkeyPatch, consumer: str | None
) -> None:
    body, code = _prove(monkeypatch, consumer, None)
    assert code == 5
    assert body["classes"] == ["A (provider PA)", "B (provider PB)"]
    assert body["proofs"] == []


def test_prove_with_consumer_and_class_proves_that_class_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """--class settles it: X's delivery of class A is proved; X never received class B's R-1."""
    body, code = _prove(monkeypatch, "X", "A")
    assert (code, body["ok"]) == (0, True)
    assert [p["event"]["data_class"] for p in body["proofs"]] == ["A"]
    body, code = _prove(monkeypatch, "X", "B")
    assert (code, body["ok"], body["proofs"]) == (5, False, [])


def test_prove_over_a_record_too_deep_to_hash_is_not_ok_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record that decodes but cannot be hashed within the stack (RecursionError in prove): before, a
    traceback; now no proof of it, and the trail BROKEN (link_problem), so exit 5."""
    event = {**_event("A", "PA", "X"), "x": []}
    record = {"kind": "block", "prev_hash": GENESIS, "root": "00", "count": 1, "hash": "00", "events": [event]}
    monkeypatch.setattr(audit_proof, "partitions", lambda *_a: {0: [(0, record)]})
    monkeypatch.setattr(audit_proof, "_signed_heads", lambda *_a: {})

    def unhashable(*_a: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded while encoding a JSON object")

    monkeypatch.setattr(audit_proof, "prove", unhashable)
    broken = Verification(0, 1, BrokenLink(0, 0, "its content cannot be hashed as canonical JSON"))
    monkeypatch.setattr(audit_proof, "verify_read", lambda *_a: broken)
    settings = SimpleNamespace(kafka=None, audit_verifier=lambda: None)
    topics = SimpleNamespace(audit="a", audit_anchors="aa")
    args = argparse.Namespace(record_id="R-1", consumer=None, data_class=None, json=False)
    out, code = audit_cmd._prove(args, settings, topics)  # type: ignore[arg-type]
    assert code == 5
    assert "no delivery of record R-1 is in the audit trail" in out
