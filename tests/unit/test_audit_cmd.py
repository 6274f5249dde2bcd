"""``sharebus audit prove`` looks a record up as the router audited its id (no Kafka: the reader is faked)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sharebus_cli import audit_cmd
from sharebus_core import headers as h
from sharebus_core.audit_fact import MAX_AUDITED_BYTES, audited_text
from sharebus_core.settings import BusSettings
from sharebus_router.audit_facts import record_fact

LONG_ID = "r-" + "é" * MAX_AUDITED_BYTES  # past the bound in UTF-8 bytes


@pytest.mark.parametrize("raw", ["r-1", "é" * (MAX_AUDITED_BYTES // 2), "x" * MAX_AUDITED_BYTES, LONG_ID])
def test_the_audited_form_is_the_one_the_router_writes(raw: str) -> None:
    written = record_fact("AMR", "c", "realtime", "src", 0, 1, None, [(h.RECORD_ID, raw.encode())], [])
    assert audited_text(raw) == written["record_id"] == audited_text(raw.encode())


def _prove(monkeypatch: pytest.MonkeyPatch, record_id: str) -> tuple[list[str], str]:
    asked: list[str] = []

    def prove_delivery(_access: Any, _topic: str, wanted: str, _source: Any, _consumer: str | None) -> Any:
        asked.append(wanted)
        return SimpleNamespace(
            record_id=wanted, ok=True, proofs=(), withdrawn=(), named=frozenset(), lines=lambda: ["proof: holds"]
        )

    monkeypatch.setattr(audit_cmd, "prove_delivery", prove_delivery)
    settings = SimpleNamespace(namespace="ns", kafka=None, audit_verifier=lambda: None)
    args = argparse.Namespace(action="prove", record_id=record_id, consumer=None, data_class=None, json=False)
    out, code = audit_cmd.run(args, cast(BusSettings, settings))
    assert code == 0
    return asked, out


def test_prove_looks_a_long_record_id_up_by_the_digest_the_trail_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    asked, out = _prove(monkeypatch, LONG_ID)
    assert asked == [audited_text(LONG_ID.encode())]
    assert asked[0].startswith("sha256:")
    assert f"audited by its digest, {asked[0]}" in out


def test_prove_looks_a_short_record_id_up_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    asked, out = _prove(monkeypatch, "r-1")
    assert asked == ["r-1"]
    assert "digest" not in out


def _held_proofs(record_id: str, *classes: tuple[str, str]) -> Any:
    """Proofs that hold, one per (provider, class), each for a delivery of ``record_id``."""
    from sharebus_core.audit_trail import GENESIS, prove, seal_block
    from sharebus_ops.audit import Verification
    from sharebus_ops.audit_proof import Proofs

    made = []
    for offset, (provider, data_class) in enumerate(classes):
        event = {"record_id": record_id, "provider": provider, "data_class": data_class, "partition": offset}
        block = seal_block([{**event, "decision": "deliver"}], GENESIS)
        made.append(prove(offset, 0, block, 0).anchored_by([], (0, block["hash"]), "signed"))
    return Proofs(record_id, tuple(made), Verification(len(made), len(made), None))


def _prove_with(monkeypatch: pytest.MonkeyPatch, found: Any, *extra: str) -> tuple[str, int]:
    monkeypatch.setattr(audit_cmd, "prove_delivery", lambda *_args: found)
    settings = SimpleNamespace(namespace="ns", kafka=None, audit_verifier=lambda: None)
    parser = argparse.ArgumentParser()
    audit_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "prove", "r-1", *extra])
    return audit_cmd.run(args, cast(BusSettings, settings))


def test_prove_refuses_a_record_id_that_two_providers_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    # Record ids are chosen by each provider (unique within its class only): a "holds" for AMR's r-1
    # must not stand for PSB's r-1, which was never delivered.
    found = _held_proofs("r-1", ("AMR", "301001001/000001"), ("PSB", "401001001/000001"))
    assert found.ok
    out, code = _prove_with(monkeypatch, found)
    assert code == 5
    assert "records of 2 data classes" in out
    assert "301001001/000001" in out
    assert "401001001/000001" in out
    out, code = _prove_with(monkeypatch, found, "--class", "401001001/000001")
    assert code == 0
    assert out.count("proof: holds") == 1
    assert "401001001/000001" in out
    _out, code = _prove_with(monkeypatch, found, "--class", "501001001/000001", "--json")
    assert code == 5


def test_prove_of_one_class_needs_no_class_given(monkeypatch: pytest.MonkeyPatch) -> None:
    found = _held_proofs("r-1", ("AMR", "301001001/000001"), ("AMR", "301001001/000001"))
    out, code = _prove_with(monkeypatch, found)
    assert code == 0
    assert out.count("proof: holds") == 2
