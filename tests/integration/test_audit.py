"""The audit trail on the real broker: every decision recorded, chained, verifiable, and tampering shows."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sharebus_cli.children import Child
from sharebus_cli.main import main as cli
from sharebus_core.topic_reader import read_topic
from sharebus_ops.audit import verify, who_received
from sharebus_provision import AUDIT_PARTITIONS, TopicSpec, ensure_topics
from sharebus_sdk import Publisher, PublisherSettings
from tests.integration.conftest import Bus
from tests.support.audit_trail import trail_events
from tests.support.auditor import start_auditor
from tests.support.kafka import eventually
from tests.support.keys import keys_in_env
from tests.support.names import unique
from tests.support.records import publish_enterprises

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"
INSPECTION = "301001003/000001"


@pytest.fixture
def auditor(bus: Bus, tmp_path: Path) -> Iterator[Child]:
    service = start_auditor(bus.services["auditor"], bus.namespace, tmp_path)
    yield service
    service.stop()


def audit_events(bus: Bus, expected: int) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        return trail_events(bus.access, bus.topics.audit)

    return eventually(read, lambda events: len(events) >= expected, timeout_s=60)


def publish(bus: Bus, first_seq: int, enterprises: int, penalties: int = 0, inspections: int = 0) -> None:
    publish_enterprises(bus.settings, range(first_seq, first_seq + enterprises))
    with Publisher("AMR", PublisherSettings.model_validate(bus.settings.model_dump()), bus.catalogue) as pub:
        for i in range(penalties):
            pub.publish(PENALTY, {"uscc": f"P{i}", "person_id_number": "11010519491231002X", "amount": 1.0, "seq": i})
        for i in range(inspections):
            pub.publish(INSPECTION, {"uscc": f"I{i}", "note": "n", "seq": i})


def copy_with(bus: Bus, change: Callable[[int, list[bytes]], list[bytes]]) -> str:
    """Copies the audit topic, partition by partition, letting ``change`` edit one partition's records."""
    target = unique(f"{bus.namespace}.audit-copy")
    ensure_topics(bus.access, [TopicSpec(target, AUDIT_PARTITIONS)])
    by_partition: dict[int, list[bytes]] = defaultdict(list)
    for msg in read_topic(bus.access, bus.topics.audit, isolation="read_committed"):
        by_partition[msg.partition() or 0].append(msg.value() or b"")
    producer = bus.access.producer({"enable.idempotence": True})
    for partition, values in by_partition.items():
        for value in change(partition, values):
            producer.produce(target, value=value, partition=partition)
    assert producer.flush(10) == 0
    return target


def test_every_decision_is_audited_chained_and_verifiable(
    bus: Bus, auditor: Child, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(bus, 0, enterprises=20, penalties=5, inspections=3)
    # 20 enterprise records to two subscribers, 5 penalties denied to one, 3 inspections denied to one.
    events = audit_events(bus, 48)
    assert len(events) == 48
    delivered = [e for e in events if e["decision"] == "deliver"]
    assert len(delivered) == 40
    sample = next(e for e in delivered if e["consumer"] == "tax-levy")
    assert sample["provider"] == "AMR"
    assert sample["data_class"] == ENTERPRISE
    assert sample["trace_id"] == f"trace-{sample['key'][1:]}"
    assert len(sample["payload_sha256"]) == 64
    assert {"time", "grant_id", "reason", "key", "record_id", "provider", "partition"} <= set(sample)
    denied = {(e["consumer"], e["data_class"], e["reason"]) for e in events if e["decision"] == "deny"}
    assert denied == {("tax-levy", PENALTY, "no_grant"), ("psb-case", INSPECTION, "class_not_shared")}

    result = verify(bus.access, bus.topics.audit)
    assert result.broken is None
    assert result.events == 48

    receipts = {
        r.consumer: r
        for r in who_received(
            bus.access, bus.topics.audit, ENTERPRISE, since=dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
        )
    }
    assert {c: r.records for c, r in receipts.items()} == {"tax-levy": 20, "psb-case": 20}
    assert receipts["tax-levy"].grant_id is None  # unconditional: no grant needed

    for name, value in (*bus.access.env().items(), ("SHAREBUS_NAMESPACE", bus.namespace)):
        monkeypatch.setenv(name, value)
    keys_in_env(monkeypatch)
    assert cli(["audit", "verify"]) == 0
    assert "audit chain intact: 48 events" in capsys.readouterr().out
    assert cli(["audit", "who", "--class", ENTERPRISE, "--since", "1d"]) == 0
    assert "psb-case" in capsys.readouterr().out
    record_id = sample["record_id"]
    auditor.stop()  # it signs its heads on the way out: an anchor covers every block now
    assert cli(["audit", "prove", record_id]) == 0
    out = capsys.readouterr().out
    assert out.count("proof: holds") == 2  # delivered to tax-levy and psb-case
    assert "audit chain intact: 48 events" in out
    assert cli(["audit", "prove", record_id, "--consumer", "tax-levy", "--json"]) == 0
    proofs = json.loads(capsys.readouterr().out)
    assert proofs["ok"] is True
    assert [p["event"]["consumer"] for p in proofs["proofs"]] == ["tax-levy"]
    assert proofs["proofs"][0]["link"]["root"]
    assert "events" not in proofs["proofs"][0]["link"]
    assert proofs["proofs"][0]["anchored"]["offset"] >= proofs["proofs"][0]["offset"]
    assert proofs["proofs"][0]["anchor_record"]
    assert cli(["audit", "prove", "no-such-record"]) == 5
    assert "no delivery of record no-such-record" in capsys.readouterr().out


def test_altering_removing_or_reordering_one_event_or_block_is_detected(
    bus: Bus, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of two events, so that each partition holds several blocks to remove or reorder.
    auditor = start_auditor(
        bus.services["auditor"], bus.namespace, tmp_path, extra_env={"SHAREBUS_AUDITOR_BLOCK_MAX_EVENTS": "2"}
    )
    try:
        publish(bus, 0, enterprises=30)
        audit_events(bus, 60)
    finally:
        auditor.stop()
    assert verify(bus.access, bus.topics.audit).broken is None
    busiest = max(
        range(AUDIT_PARTITIONS),
        key=lambda p: sum(1 for m in read_topic(bus.access, bus.topics.audit) if m.partition() == p),
    )

    def edited(values: list[bytes], edit: Callable[[dict[str, Any]], None]) -> list[bytes]:
        block = json.loads(values[3])
        edit(block)
        return [*values[:3], json.dumps(block).encode(), *values[4:]]

    def altered(partition: int, values: list[bytes]) -> list[bytes]:
        if partition != busiest:
            return values
        return edited(values, lambda b: b["events"][0].update(consumer="someone-else"))

    def event_removed(partition: int, values: list[bytes]) -> list[bytes]:
        return edited(values, lambda b: b["events"].pop()) if partition == busiest else values

    def removed(partition: int, values: list[bytes]) -> list[bytes]:
        return [*values[:3], *values[4:]] if partition == busiest else values

    def reordered(partition: int, values: list[bytes]) -> list[bytes]:
        return [*values[:3], values[4], values[3], *values[5:]] if partition == busiest else values

    for change, problem in (
        (altered, "do not match its Merkle root"),
        (event_removed, "an event was removed or added"),
        (removed, "prev_hash does not match"),
        (reordered, "prev_hash does not match"),
    ):
        result = verify(bus.access, copy_with(bus, change))
        assert result.broken is not None, change.__name__
        assert result.broken.partition == busiest
        assert result.broken.offset == 3
        assert problem in result.broken.problem

    for name, value in (*bus.access.env().items(), ("SHAREBUS_NAMESPACE", bus.namespace)):
        monkeypatch.setenv(name, value)
    assert cli(["audit", "verify", "--topic", copy_with(bus, removed)]) == 5
    assert "audit chain BROKEN at partition" in capsys.readouterr().out


def test_a_restarted_auditor_continues_the_chains_from_the_log(bus: Bus, tmp_path: Path) -> None:
    first = start_auditor(bus.services["auditor"], bus.namespace, tmp_path / "first")
    publish(bus, 0, enterprises=10)
    audit_events(bus, 20)
    first.stop()
    publish(bus, 10, enterprises=10)  # decided while no auditor runs: the facts wait in their topic
    second = start_auditor(bus.services["auditor"], bus.namespace, tmp_path / "second")
    try:
        assert len(audit_events(bus, 40)) == 40
    finally:
        second.stop()
    result = verify(bus.access, bus.topics.audit)
    assert result.broken is None
    assert result.events == 40
