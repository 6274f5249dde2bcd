"""``sharebus audit prove`` looks a record up as the router audited its id (no Kafka: the reader is faked)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sharebus_cli import audit_cmd
from sharebus_core.audit_fact import MAX_AUDITED_BYTES, audited_text
from sharebus_core.settings import BusSettings
from sharebus_router.audit_facts import bounded_text

LONG_ID = "r-" + "é" * MAX_AUDITED_BYTES  # past the bound in UTF-8 bytes


@pytest.mark.parametrize("raw", ["r-1", "é" * (MAX_AUDITED_BYTES // 2), "x" * MAX_AUDITED_BYTES, LONG_ID])
def test_the_audited_form_is_the_one_the_router_writes(raw: str) -> None:
    assert audited_text(raw) == bounded_text(raw.encode()) == audited_text(raw.encode())


def _prove(monkeypatch: pytest.MonkeyPatch, record_id: str) -> tuple[list[str], str]:
    asked: list[str] = []

    def prove_delivery(_access: Any, _topic: str, wanted: str, _source: Any, _consumer: str | None) -> Any:
        asked.append(wanted)
        return SimpleNamespace(record_id=wanted, ok=True, proofs=(), lines=lambda: ["proof: holds"])

    monkeypatch.setattr(audit_cmd, "prove_delivery", prove_delivery)
    settings = SimpleNamespace(namespace="ns", kafka=None, audit_verifier=lambda: None)
    args = argparse.Namespace(action="prove", record_id=record_id, consumer=None, json=False)
    out, code = audit_cmd.run(args, cast(BusSettings, settings))
    assert code == 0
    return asked, out


def test_prove_looks_a_long_record_id_up_by_the_digest_the_trail_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    asked, out = _prove(monkeypatch, LONG_ID)
    assert asked == [bounded_text(LONG_ID.encode())]
    assert asked[0].startswith("sha256:")
    assert f"audited by its digest, {asked[0]}" in out


def test_prove_looks_a_short_record_id_up_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    asked, out = _prove(monkeypatch, "r-1")
    assert asked == ["r-1"]
    assert "digest" not in out
