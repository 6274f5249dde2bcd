"""Disputes: the pure state machine, its deadline in working days, the fold every reader uses, the
audit fact of a step, and the on-disk delivery index (without Kafka)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import NamedTuple

import pytest
from prometheus_client import CollectorRegistry

from sharebus_core import headers as h
from sharebus_core.audit_fact import AuditFact
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.topics import TopicNames
from sharebus_disputes import DisputeSettings, NotReceived
from sharebus_disputes import service as dispute_service
from sharebus_disputes.audit import dispute_fact
from sharebus_disputes.deliveries import DeliveryIndex, Row, delivery_row
from sharebus_rules import disputes as rules
from sharebus_rules.disputes import Dispute, DisputeEvent, DisputeRefused, DisputeState, fold
from tests.unit.fixtures import FIXTURE_CATALOGUE

FRIDAY = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
FIELDS = ("uscc", "name", "legal_rep_name", "registered_capital", "established", "seq", "note")


def opened(received: bool = True, now: dt.datetime = FRIDAY, **overrides: object) -> DisputeEvent:
    args: dict[str, object] = {
        "dispute_id": "d-1",
        "record_id": "r-1",
        "data_class": "301001001/000001",
        "provider": "AMR",
        "consumer": "tax-levy",
        "consumer_department": "TAX",
        "fields": ["name", "name", "registered_capital"],
        "reason": "the capital is ten times too high",
        "schema_fields": FIELDS,
        "received": received,
        "now": now,
    }
    args.update(overrides)
    return rules.open_dispute(**args)  # type: ignore[arg-type]


def folded(*events: DisputeEvent) -> Dispute:
    current: Dispute | None = None
    for event in events:
        current = fold(current, event)
    assert current is not None
    return current


def test_the_deadline_counts_working_days_only() -> None:
    # Friday + 5 working days is the next Friday; Monday..Friday of the week between.
    assert rules.deadline(FRIDAY) == FRIDAY + dt.timedelta(days=7)
    assert rules.deadline(FRIDAY, 1) == FRIDAY + dt.timedelta(days=3)  # Monday
    saturday = FRIDAY + dt.timedelta(days=1)
    assert rules.deadline(saturday, 1).weekday() == 0
    with pytest.raises(DisputeRefused):
        rules.deadline(FRIDAY, 0)


def test_a_receiving_system_opens_a_dispute_with_the_contract_fields() -> None:
    event = opened()
    assert event.type == "opened"
    assert event.fields == ("name", "registered_capital")  # repeats dropped, order kept
    assert event.opened_at == event.time == FRIDAY
    assert event.deadline == rules.deadline(FRIDAY)
    assert event.by == "tax-levy"
    assert event.answer is None
    assert event.correction_record_id is None
    body = json.loads(event.encode()[1])
    assert set(body) == {
        "type", "dispute_id", "record_id", "data_class", "provider", "consumer", "consumer_department",
        "fields", "reason", "opened_at", "deadline", "time", "answer", "correction_record_id", "by",
    }  # fmt: skip
    assert body["opened_at"].endswith("Z")
    assert folded(event).state is DisputeState.OPEN


def test_a_system_that_did_not_receive_the_record_is_refused() -> None:
    event = opened(received=False, data_class="unknown", provider="unknown", schema_fields=())
    assert event.type == "refused"
    assert event.answer is not None
    assert "did not receive" in event.answer
    assert fold(None, event) is None  # a refusal opens nothing


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reason": "  "}, "reason"),
        ({"fields": []}, "disputed field"),
        ({"fields": ["name", "colour"]}, "colour not field"),
    ],
)
def test_a_claim_that_is_not_one_is_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(DisputeRefused, match=message):
        opened(**overrides)  # type: ignore[arg-type]


def test_the_provider_confirms_then_corrects() -> None:
    dispute = folded(opened())
    later = FRIDAY + dt.timedelta(days=2)
    answered = rules.answer(dispute, acting_department="AMR", confirm=True, text="typo", now=later, by="amr-reg")
    assert (answered.type, answered.answer, answered.time, answered.by) == ("answered", "typo", later, "amr-reg")
    dispute = folded(opened(), answered)
    assert dispute.state is DisputeState.ANSWERED
    assert dispute.answered_on_time()
    done = rules.corrected(dispute, acting_department="AMR", correction_record_id="r-2", now=later, by="amr-reg")
    dispute = folded(opened(), answered, done)
    assert dispute.state is DisputeState.CORRECTED
    assert dispute.latest.correction_record_id == "r-2"
    assert dispute.latest.answer == "typo"  # every event repeats the dispute's facts so far


def test_only_the_provider_answers_and_only_in_order() -> None:
    dispute = folded(opened())
    with pytest.raises(DisputeRefused, match="only the provider AMR"):
        rules.answer(dispute, acting_department="TAX", confirm=False, text="no", now=FRIDAY, by="tax-levy")
    with pytest.raises(DisputeRefused, match="cannot be corrected"):
        rules.corrected(dispute, acting_department="AMR", correction_record_id="r-2", now=FRIDAY, by="amr-reg")
    with pytest.raises(DisputeRefused, match="reason"):
        rules.answer(dispute, acting_department="AMR", confirm=False, text=" ", now=FRIDAY, by="amr-reg")
    rejected = rules.answer(dispute, acting_department="AMR", confirm=False, text="it is right", now=FRIDAY, by="a")
    done = folded(opened(), rejected)
    assert done.state is DisputeState.REJECTED
    with pytest.raises(DisputeRefused, match="is rejected"):
        rules.answer(done, acting_department="AMR", confirm=True, text="after all", now=FRIDAY, by="a")


def test_an_unanswered_dispute_becomes_overdue_after_its_deadline_and_may_still_be_answered() -> None:
    dispute = folded(opened())
    deadline = dispute.latest.deadline
    assert rules.overdue(dispute, now=deadline, by="gw") is None
    assert rules.due_for_escalation([dispute], deadline) == []
    late = deadline + dt.timedelta(seconds=1)
    assert rules.due_for_escalation([dispute], late) == [dispute]
    escalation = rules.overdue(dispute, now=late, by="gw")
    assert escalation is not None
    assert escalation.type == "overdue"
    dispute = folded(opened(), escalation)
    assert dispute.state is DisputeState.OVERDUE
    assert dispute.is_past_deadline(late)
    assert rules.overdue(dispute, now=late, by="gw") is None  # escalated once
    answered = rules.answer(dispute, acting_department="AMR", confirm=True, text="late", now=late, by="amr-reg")
    dispute = folded(opened(), escalation, answered)
    assert dispute.state is DisputeState.ANSWERED
    assert not dispute.answered_on_time()
    assert not dispute.is_past_deadline(late)


def test_fold_ignores_steps_that_do_not_follow() -> None:
    first = opened()
    late = first.deadline + dt.timedelta(hours=1)
    escalation = rules.overdue(folded(first), now=late, by="gw-1")
    assert escalation is not None
    # Two gateways escalated, and a step was read back after the writer applied it: one state.
    twice = folded(first, escalation, escalation.model_copy(update={"by": "gw-2"}), first)
    assert twice.state is DisputeState.OVERDUE
    assert twice.latest.by == "gw-1"
    stray = first.model_copy(update={"type": "corrected", "dispute_id": "d-2"})
    assert fold(None, stray) is None


def test_each_step_is_an_audit_fact_that_is_never_a_delivery() -> None:
    event = opened()
    body = dispute_fact(event).to_dict()
    assert body["mode"] == "dispute"
    assert body["record_id"] == "r-1"
    assert body["dispute_event"] == "opened"
    assert body["decisions"] == [
        {"consumer": "tax-levy", "grant_id": None, "decision": "dispute", "reason": "opened", "payload_sha256": None}
    ]
    refused = dispute_fact(opened(received=False)).to_dict()
    assert refused["decisions"][0]["decision"] == "forbidden"
    # The auditor copies each decision into an audit event; the delivery index ignores these.
    assert delivery_row({**body, **body["decisions"][0]}) is None


def test_the_delivery_index_keeps_deliveries_and_its_positions_on_disk(tmp_path: Path) -> None:
    access = KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")
    path = tmp_path / "index.sqlite"
    deliver = {"decision": "deliver", "record_id": "r-1", "consumer": "tax-levy", "data_class": "c", "provider": "AMR"}
    rows = [
        delivery_row({**deliver, "time": "t1"}),
        delivery_row({**deliver, "consumer": "psb-case", "time": "t2"}),
        delivery_row({**deliver, "consumer": "psb-case", "time": "t2"}),  # redelivery: one row
        delivery_row({**deliver, "decision": "deny", "consumer": "hrss-si"}),
        delivery_row({**deliver, "record_id": None}),
    ]
    index = DeliveryIndex(access, "ns.audit", path)
    index._commit([r for r in rows if r is not None], {0: 7, 2: 3})
    assert [r.consumer for r in index.receipts("r-1")] == ["psb-case", "tax-levy"]
    assert index.receipt("r-1", "hrss-si") is None
    assert index.receipts("r-2") == []
    index._commit([], {0: 5})  # never backwards
    assert index.positions() == {0: 7, 2: 3}
    index.stop()
    again = DeliveryIndex(access, "ns.audit", path)
    assert again.positions() == {0: 7, 2: 3}  # resumes where it stopped
    receipt = again.receipt("r-1", "tax-levy")
    assert receipt is not None
    assert (receipt.data_class, receipt.provider, receipt.delivered_at) == ("c", "AMR", "t1")
    again.stop()


class OfflineDisputes(NamedTuple):
    """A dispute service with no Kafka: its events and audit facts collected, its index as the test sets it."""

    service: dispute_service.DisputeService
    written: list[DisputeEvent]
    facts: list[AuditFact]


def offline_disputes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receipts: list[Row]) -> OfflineDisputes:
    """``receipts``: (record id, consumer, class, provider, delivered at) rows of the delivery index."""
    written: list[DisputeEvent] = []
    facts: list[AuditFact] = []
    monkeypatch.setattr(dispute_service, "write_event", lambda access, topic, event: written.append(event))
    service = dispute_service.DisputeService(
        load_catalogue(FIXTURE_CATALOGUE),
        KafkaAccess(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT"),
        TopicNames("ns"),
        DisputeSettings(namespace="ns", index_dir=tmp_path),
        facts.append,
        CollectorRegistry(),
    )
    monkeypatch.setattr(service.index, "wait_current", lambda timeout_s: True)
    service.index._commit(receipts, {})
    return OfflineDisputes(service, written, facts)


def test_a_refused_claim_names_no_class_or_provider_from_another_systems_receipt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else a refusal tells any department what a record id it guessed is, and who provides it."""
    service, written, facts = offline_disputes(
        tmp_path, monkeypatch, [("r-1", "tax-levy", "301001002/000001", "AMR", "t1")]
    )
    try:
        with pytest.raises(NotReceived):
            service.open(system="hrss-si", department="HRSS", record_id="r-1", fields=["name"], reason="wrong")
        refused = written[-1]
        assert (refused.type, refused.data_class, refused.provider) == ("refused", "unknown", "unknown")
        assert (facts[-1].data_class, facts[-1].provider) == ("unknown", "unknown")  # nor in the audit trail
        assert service.listing("AMR") == service.listing("HRSS") == []
        # The system that received it names its own receipt's class and provider.
        mine = service.open(system="tax-levy", department="TAX", record_id="r-1", fields=["amount"], reason="wrong")
        assert (mine.type, mine.data_class, mine.provider) == ("opened", "301001002/000001", "AMR")
    finally:
        service.index.stop()


def test_a_dispute_on_a_class_now_provided_by_another_department_is_that_departments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record was delivered when PSB provided the class; the catalogue now names AMR. As for grants
    (``sharebus_grants.with_current_parties``), the former provider neither sees nor answers the
    dispute (it could confirm it, but never publish the correction), and the current one does."""
    service = offline_disputes(tmp_path, monkeypatch, [("r-1", "tax-levy", "301001002/000001", "PSB", "t1")]).service
    try:
        opened_ = service.open(system="tax-levy", department="TAX", record_id="r-1", fields=["amount"], reason="wrong")
        assert opened_.provider == "AMR"  # the event, its audit fact and the report name the provider now
        assert service.listing("PSB") == []
        with pytest.raises(dispute_service.DisputeNotFound):
            service.visible(opened_.dispute_id, "PSB")
        assert [d.dispute_id for d in service.listing("AMR", role="provider")] == [opened_.dispute_id]
        dispute = service.visible(opened_.dispute_id, "AMR")
        answered = service.answer(dispute, system="amr-reg", department="AMR", confirm=False, text="no error")
        assert (answered.type, answered.provider) == ("rejected", "AMR")
    finally:
        service.index.stop()


def test_one_record_id_of_two_classes_received_is_disputed_by_naming_the_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record ids are chosen per provider and class (unique within a class only): one system may
    receive ``r-1`` of two classes. The index kept the first receipt alone, so a dispute of the
    second record went to the first record's class and provider, with the claimant's reason, and
    the second could never be disputed. Both receipts are kept; an id that names records of several
    classes is refused until the claim names the class."""
    enterprise, penalty = "301001001/000001", "301001002/000001"
    receipts: list[Row] = [
        ("r-1", "tax-levy", enterprise, "AMR", "t1"),
        ("r-1", "tax-levy", penalty, "AMR", "t2"),
    ]
    service, written, _facts = offline_disputes(tmp_path, monkeypatch, receipts)
    try:
        assert sorted(r.data_class or "" for r in service.index.receipts("r-1")) == [enterprise, penalty]
        with pytest.raises(DisputeRefused, match="name the class"):
            service.open(system="tax-levy", department="TAX", record_id="r-1", fields=["amount"], reason="wrong")
        assert written == []  # nothing opened with either provider
        mine = service.open(
            system="tax-levy", department="TAX", record_id="r-1", fields=["amount"], reason="wrong", data_class=penalty
        )
        assert (mine.type, mine.data_class) == ("opened", penalty)
        with pytest.raises(NotReceived):  # a class it did not receive r-1 of is no receipt
            service.open(
                system="tax-levy",
                department="TAX",
                record_id="r-1",
                fields=["name"],
                reason="x",
                data_class="301001003/000001",
            )
    finally:
        service.index.stop()


def test_the_router_passes_a_corrects_header_checked_as_a_record_id() -> None:
    from sharebus_router.bus_headers import bus_headers
    from sharebus_router.dead_letters import BadRecord

    classes = ["301001001/000001"]
    passed = bus_headers([(h.CORRECTS, b"r-1")], classes[0], "AMR", classes)
    assert (h.CORRECTS, b"r-1") in passed
    for bad in ([(h.CORRECTS, b"r\n1")], [(h.CORRECTS, b"x" * 201)], [(h.CORRECTS, b"a"), (h.CORRECTS, b"b")]):
        with pytest.raises(BadRecord, match="sharebus-corrects"):
            bus_headers(bad, classes[0], "AMR", classes)
