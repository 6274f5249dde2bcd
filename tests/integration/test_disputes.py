"""Disputes on the real broker, with the fixture's demo departments (AMR provides; TAX's tax-levy and
PSB's psb-case receive enterprise records, and penalty records under grants with field rules of their
own; HRSS's hrss-si receives none of them).

A dispute is opened by a receiving system (SDK, CLI), refused for a system that never received the
record, answered with a correction that reaches every original recipient, and escalated when left
unanswered past its deadline (the gateway's clock moved through its skew file). Every step is an event
on the disputes topic, an audit event and a counter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sharebus_cli.children import Child
from sharebus_cli.main import main as cli
from sharebus_core.topic_reader import read_topic
from sharebus_grants import GrantService
from sharebus_sdk import Delivery, Disputes, Subscriber, SubscriberSettings
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus
from tests.support.audit_trail import trail_events
from tests.support.auditor import start_auditor
from tests.support.gateway import GatewayProcess, issue_key, start_gateway
from tests.support.kafka import end_offsets, eventually, metric
from tests.support.keys import control_keys
from tests.support.names import unique
from tests.support.records import penalty
from tests.support.router import wait_routed

ENTERPRISE = "301001001/000001"  # unconditional: tax-levy and psb-case subscribe
PENALTY = "301001002/000001"  # conditional, with a sensitive field: each receiver under its own grant
RECEIVERS = ("tax-levy", "psb-case")
SYSTEMS = ("amr-reg", *RECEIVERS, "hrss-si")


@dataclass
class DisputeBus:
    bus: Bus
    gateway: GatewayProcess
    tokens: dict[str, str]
    skew_file: Path

    def client(self, system: str) -> httpx.Client:
        return self.gateway.client(self.tokens[system])

    def sdk(self, system: str) -> Disputes:
        return Disputes(self.gateway.base_url, self.tokens[system])

    def move_clock(self, days: float) -> None:
        """The gateway's clock (``SHAREBUS_DISPUTES_CLOCK_SKEW_FILE``) jumps ``days`` ahead."""
        self.skew_file.write_text(str(days * 86_400))


@pytest.fixture
def disputes(bus: Bus, tmp_path: Path) -> Iterator[DisputeBus]:
    auditor: Child = start_auditor(bus.services["auditor"], bus.namespace, tmp_path)
    skew_file = tmp_path / "gateway-clock-skew"
    skew_file.write_text("0")
    gateway = start_gateway(
        bus.services["gateway"],
        bus.namespace,
        bus.registry_url,
        FIXTURE_CATALOGUE,
        tmp_path,
        extra_env={
            "SHAREBUS_DISPUTES_CLOCK_SKEW_FILE": str(skew_file),
            "SHAREBUS_DISPUTES_OVERDUE_CHECK_S": "0.5",
        },
    )
    try:
        tokens = {s: issue_key(bus.catalogue, bus.access, bus.topics.api_keys, s) for s in SYSTEMS}
        for token in tokens.values():
            with gateway.client(token) as client:
                eventually(lambda c=client: c.get("/v1/whoami").status_code, lambda code: code == 200, 20)  # type: ignore[misc]
        yield DisputeBus(bus, gateway, tokens, skew_file)
    finally:
        gateway.stop()
        auditor.stop()


def enterprise(seq: int) -> dict[str, Any]:
    return {
        "uscc": f"U{seq}",
        "name": f"enterprise {seq}",
        "legal_rep_name": "l",
        "registered_capital": 1.0,
        "established": "2020-01-01",
        "seq": seq,
        "note": None,
    }


def deliveries(bus: Bus, system: str, done: Any, timeout_s: float = 30.0) -> list[Delivery]:
    """``system``'s deliveries from the start (a group of its own), until ``done(deliveries)`` holds."""
    settings = SubscriberSettings.model_validate({**bus.settings.model_dump(), "group_id": unique(f"{system}.t")})
    got: list[Delivery] = []
    with Subscriber(system, settings) as subscriber:
        for item in subscriber.records(idle_timeout_s=timeout_s):
            if isinstance(item, Delivery):
                got.append(item)
            if done(got):
                break
    return got


def audit_trail(bus: Bus) -> list[dict[str, Any]]:
    return trail_events(bus.access, bus.topics.audit)


def dispute_events(bus: Bus) -> list[dict[str, Any]]:
    return [json.loads(m.value() or b"") for m in read_topic(bus.access, bus.topics.disputes)]


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: DisputeBus, system: str | None, *argv: str
) -> Any:
    """``sharebus dispute ...`` as ``system`` (its API key), or as the operator (``system=None``)."""
    db.bus.use_in_env(monkeypatch)
    if system is not None:
        monkeypatch.setenv("SHAREBUS_API_KEY", db.tokens[system])
        monkeypatch.setenv("SHAREBUS_GATEWAY_URL", db.gateway.base_url)
    capsys.readouterr()
    code = cli(["dispute", *argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def grant_penalties(bus: Bus) -> None:
    """Each receiver gets the conditional penalty class under field rules of its own."""
    grants = GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())
    rules = {
        "tax-levy": ("TAX", ["uscc", "person_id_number", "amount", "seq"], ["person_id_number"]),
        "psb-case": ("PSB", ["uscc", "amount", "seq"], []),
    }
    for consumer, (department, fields, masked) in rules.items():
        applied = grants.apply(
            department=department,
            requester="officer",
            consumer=consumer,
            data_class=PENALTY,
            purpose="credit rating",
            scenario="yearly rating",
            fields=fields,
            masked_fields=masked,
        )
        grants.approve(applied.grant_id, department="AMR")
    wait_routed(bus.router, 4)


def publish(db: DisputeBus, code: str, record: dict[str, Any]) -> str:
    with db.client("amr-reg") as amr:
        published = amr.post(f"/v1/classes/{code}/records", json=record)
    assert published.status_code == 200, published.text
    record_id: str = published.json()["record_ids"][0]
    return record_id


def test_disputes_opened_refused_corrected_and_escalated(
    disputes: DisputeBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bus = disputes.bus
    grant_penalties(bus)
    first = publish(disputes, PENALTY, penalty(1))
    second = publish(disputes, ENTERPRISE, enterprise(2))
    # Both receivers got both records, and the audit trail proves it (what the gateway indexes).
    for system in RECEIVERS:
        assert len(deliveries(bus, system, lambda got: len(got) >= 2)) == 2
    delivered = eventually(
        lambda: {(e["record_id"], e["consumer"]) for e in audit_trail(bus) if e.get("decision") == "deliver"},
        lambda pairs: len(pairs) >= 4,
    )
    assert delivered == {(r, s) for r in (first, second) for s in RECEIVERS}

    # A receiving system opens a dispute (SDK).
    with disputes.sdk("tax-levy") as tax:
        opened = tax.open(first, ["amount"], "the fine is a thousand times too high")
    assert opened["state"] == "open"
    assert opened["type"] == "opened"
    assert (opened["provider"], opened["consumer"], opened["consumer_department"]) == ("AMR", "tax-levy", "TAX")
    assert opened["data_class"] == PENALTY
    assert opened["record_id"] == first
    opened_at, deadline = (dt.datetime.fromisoformat(opened[k]) for k in ("opened_at", "deadline"))
    assert dt.timedelta(days=5) <= deadline - opened_at <= dt.timedelta(days=9)  # 5 working days

    # A system that never received the record is refused, with the reason, and a refused event.
    with disputes.client("hrss-si") as hrss:
        refused = hrss.post("/v1/disputes", json={"record_id": first, "fields": ["name"], "reason": "wrong name"})
    assert refused.status_code == 403
    assert "hrss-si did not receive record" in refused.json()["detail"]

    # Another receiver disputes the second record, through the CLI.
    second_dispute = run_cli(
        monkeypatch, capsys, disputes, "psb-case", "open", "--record-id", second, "--fields", "name", "--reason", "typo"
    )
    assert second_dispute["state"] == "open"
    assert second_dispute["consumer"] == "psb-case"

    # The provider's inbox (CLI) shows both, with their deadlines; the others cannot act for it.
    inbox = run_cli(monkeypatch, capsys, disputes, "amr-reg", "inbox")
    assert {d["dispute_id"]: d["deadline"] for d in inbox} == {
        opened["dispute_id"]: opened["deadline"],
        second_dispute["dispute_id"]: second_dispute["deadline"],
    }
    answer = {"decision": "reject", "answer": "no"}
    with disputes.client("tax-levy") as tax_http:
        assert tax_http.post(f"/v1/disputes/{opened['dispute_id']}/answer", json=answer).status_code == 403
        assert tax_http.get(f"/v1/disputes/{second_dispute['dispute_id']}").status_code == 404
        assert tax_http.get("/v1/disputes/inbox").json() == []

    # The provider confirms and publishes the correction (SDK): it reaches every original recipient,
    # each under its own field rules.
    fixed = {**penalty(1), "amount": 0.101}
    with disputes.sdk("amr-reg") as amr_sdk:
        answered = amr_sdk.answer(opened["dispute_id"], "confirm", "a unit error: 万元 read as 元", correction=fixed)
    assert answered["state"] == "corrected"
    assert answered["answer"] == "a unit error: 万元 read as 元"
    correction_id = answered["correction_record_id"]
    assert correction_id not in (None, first, second)
    seen = {
        "tax-levy": {"uscc": fixed["uscc"], "person_id_number": "110105********002X", "amount": 0.101, "seq": 1},
        "psb-case": {"uscc": fixed["uscc"], "amount": 0.101, "seq": 1},
    }
    for system in RECEIVERS:
        got = deliveries(bus, system, lambda got: any(d.corrects == first for d in got))
        corrections = [d for d in got if d.corrects == first]
        assert len(corrections) == 1, system
        assert corrections[0].record_id == correction_id
        assert corrections[0].value == seen[system]
    assert end_offsets(bus.access, bus.topics.delivery("hrss-si")) == 0

    # Or the provider rejects a dispute, with its reason (CLI).
    with disputes.sdk("tax-levy") as tax:
        third = tax.open(second, ["name"], "the name is misspelt")
    reason = "the registration spells it so"
    rejected = run_cli(
        monkeypatch, capsys, disputes, "amr-reg", "answer", third["dispute_id"], "--reject", "--answer", reason
    )
    assert (rejected["state"], rejected["type"], rejected["answer"]) == ("rejected", "rejected", reason)

    # Left unanswered past its deadline, the second dispute is escalated, and the operator sees it.
    with disputes.client("psb-case") as psb:
        assert psb.get("/v1/disputes", params={"overdue": True}).json() == []
        disputes.move_clock(days=9)
        state = eventually(
            lambda: psb.get(f"/v1/disputes/{second_dispute['dispute_id']}").json()["state"], lambda s: s == "overdue"
        )
    assert state == "overdue"
    escalated = run_cli(monkeypatch, capsys, disputes, None, "overdue")
    assert [d["dispute_id"] for d in escalated] == [second_dispute["dispute_id"]]

    # Every step is an event (contract B), audited and counted.
    events = eventually(lambda: dispute_events(bus), lambda found: len(found) >= 8)
    assert [(e["type"], e["consumer"]) for e in events] == [
        ("opened", "tax-levy"),
        ("refused", "hrss-si"),
        ("opened", "psb-case"),
        ("answered", "tax-levy"),
        ("corrected", "tax-levy"),
        ("opened", "tax-levy"),
        ("rejected", "tax-levy"),
        ("overdue", "psb-case"),
    ]
    assert events[4]["correction_record_id"] == correction_id
    assert events[3]["by"] == "amr-reg"
    # hrss-si received nothing: another system's receipt must not tell it the class or the provider.
    assert (events[1]["data_class"], events[1]["provider"]) == ("unknown", "unknown")
    assert events[1]["consumer_department"] == "HRSS"
    audited = eventually(
        lambda: [(e["dispute_event"], e["decision"]) for e in audit_trail(bus) if e.get("mode") == "dispute"],
        lambda found: len(found) >= 8,
    )
    assert sorted(audited) == sorted(
        [("opened", "dispute"), ("refused", "forbidden"), ("opened", "dispute"), ("answered", "dispute"),
         ("corrected", "dispute"), ("opened", "dispute"), ("rejected", "dispute"), ("overdue", "dispute")]
    )  # fmt: skip
    counts = {
        kind: metric(f"{disputes.gateway.base_url}/metrics", "sharebus_disputes_events_total", type=kind)
        for kind in ("opened", "refused", "answered", "corrected", "rejected", "overdue")
    }
    assert counts == {"opened": 3, "refused": 1, "answered": 1, "corrected": 1, "rejected": 1, "overdue": 1}
