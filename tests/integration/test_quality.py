"""Quality rules on the real broker: a class with rules rejects or flags exactly the records that break
them; the router's quality metrics match a count made here; the audit trail carries every quality object."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sharebus_cli.children import Child
from sharebus_core import headers as h
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_router.dead_letters import DLQ_DATA_CLASS, DLQ_REASON
from sharebus_rules.check_digits import uscc_check_char
from sharebus_sdk import Publisher, PublisherSettings
from tests.integration.conftest import FIXTURE_CATALOGUE, Bus
from tests.support.audit_trail import trail_events
from tests.support.auditor import start_auditor
from tests.support.identities import provision_bus
from tests.support.kafka import eventually, metric, read_all
from tests.support.names import unique
from tests.support.registry import RegistryProcess
from tests.support.router import start_router
from tests.support.scrape import scraped
from tests.support.subscribe import collect

ENTERPRISE = "301001001/000001"  # unconditional: tax-levy and psb-case receive it
PENALTY = "301001002/000001"  # conditional, no grant: every passing record is denied to tax-levy
RULES = {
    ENTERPRISE: {
        "on_failure": "flag",
        "rules": [
            {"field": "uscc", "kind": "uscc", "on_failure": "reject"},
            {"field": "name", "kind": "required"},
            {"field": "registered_capital", "kind": "range", "min": 0},
        ],
    },
    # A penalty must name a registered enterprise; one that does not is rejected.
    PENALTY: {"on_failure": "reject", "rules": [{"field": "uscc", "kind": "reference", "data_class": ENTERPRISE}]},
}
ENTERPRISES = 40
PENALTIES = 12


@dataclass
class QualityBus:
    bus: Bus
    auditor: Child


def ruled_catalogue(tmp_path: Path) -> Path:
    target = tmp_path / "catalogue"
    shutil.copytree(FIXTURE_CATALOGUE, target)
    raw = yaml.safe_load((target / "catalogue.yaml").read_text(encoding="utf-8"))
    for entry in raw["data_classes"]:
        if entry["code"] in RULES:
            entry["quality"] = RULES[entry["code"]]
    (target / "catalogue.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return target


@pytest.fixture
def quality_bus(kafka_admin: KafkaAccess, shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[QualityBus]:
    namespace = unique("t")
    directory = ruled_catalogue(tmp_path)
    catalogue = load_catalogue(directory)
    services = provision_bus(kafka_admin, catalogue, namespace, shared_registry.namespace)
    router = start_router(services["router"], namespace, shared_registry.url, directory, tmp_path)
    auditor = start_auditor(services["auditor"], namespace, tmp_path)
    try:
        yield QualityBus(Bus(kafka_admin, namespace, shared_registry.url, catalogue, router, services), auditor)
    finally:
        auditor.stop()
        router.stop()


def uscc(seq: int) -> str:
    body = f"91500000MA{seq:07d}"
    return body + uscc_check_char(body)


def wrong_uscc(seq: int) -> str:
    right = uscc(seq)
    return right[:-1] + ("0" if right[-1] != "0" else "1")


def enterprise(seq: int) -> dict[str, Any]:
    """Every fourth record is clean; the others break the uscc check (reject), the name (flag), or the
    name and the capital (flag, two rules)."""
    flaw = seq % 4
    return {
        "uscc": wrong_uscc(seq) if flaw == 1 else uscc(seq),
        "name": {2: "", 3: "  "}.get(flaw, f"重庆测试企业{seq}有限公司"),
        "legal_rep_name": "张三",
        "registered_capital": -1.0 if flaw == 3 else 100.0 + seq,
        "established": dt.date(2020, 1, 1),
        "seq": seq,
        "note": None if seq % 2 else f"note {seq}",
    }


def penalty(seq: int) -> dict[str, Any]:
    """A third name a clean enterprise, a third a rejected one (its key must not count), a third nobody."""
    target = {0: uscc(4 * seq), 1: wrong_uscc(4 * seq + 1), 2: uscc(90_000 + seq)}[seq % 3]
    return {"uscc": target, "person_id_number": "11010519491231002X", "amount": 10.0, "seq": seq}


def expected_failures(code: str, record: dict[str, Any]) -> list[str]:
    """What the rules say, worked out here without the bus's code."""
    if code == PENALTY:
        return [] if record["seq"] % 3 == 0 else ["uscc:reference"]
    failed = []
    if record["uscc"] != uscc(record["seq"]):
        failed.append("uscc:uscc")
    if not record["name"].strip():
        failed.append("name:required")
    if record["registered_capital"] < 0:
        failed.append("registered_capital:range")
    return failed


def filled(record: dict[str, Any]) -> int:
    return sum(1 for v in record.values() if v is not None and not (isinstance(v, str) and not v.strip()))


def publish(bus: Bus, catalogue: Catalogue, code: str, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    settings = PublisherSettings.model_validate(bus.settings.model_dump())
    with Publisher("AMR", settings, catalogue) as pub:
        return {pub.publish(code, record): record for record in records}


def test_rules_reject_and_flag_exactly_the_records_that_break_them(quality_bus: QualityBus) -> None:
    bus = quality_bus.bus
    url = bus.router.metrics_url
    enterprises = publish(bus, bus.catalogue, ENTERPRISE, [enterprise(i) for i in range(ENTERPRISES)])
    valid_keys = sum(1 for r in enterprises.values() if "uscc:uscc" not in expected_failures(ENTERPRISE, r))
    # The penalties' reference rule asks the router's view of the enterprise keys: wait until it has them.
    eventually(lambda: metric(url, "sharebus_quality_reference_keys", data_class=ENTERPRISE), lambda n: n >= valid_keys)
    penalties = publish(bus, bus.catalogue, PENALTY, [penalty(i) for i in range(PENALTIES)])
    published = {
        **{(ENTERPRISE, k): r for k, r in enterprises.items()},
        **{(PENALTY, k): r for k, r in penalties.items()},
    }
    failures = {key: expected_failures(key[0], record) for key, record in published.items()}
    rejected = {key for key, failed in failures.items() if failed and (key[0] == PENALTY or "uscc:uscc" in failed)}
    flagged = {key for key, failed in failures.items() if failed and key not in rejected}
    assert (len(rejected), len(flagged)) == (10 + 8, 20)  # the test's own arithmetic, before the bus's

    # Rejected: in the dead-letter topic with the rule as the reason, and nowhere else.
    dead = read_all(bus.access, bus.topics.dead_letter, len(rejected), timeout_s=60)
    headers = [h.header_map(m.headers()) for m in dead]
    reasons = Counter((meta[DLQ_DATA_CLASS].decode(), meta[DLQ_REASON].decode()) for meta in headers)
    assert reasons == Counter({(ENTERPRISE, "quality:uscc:uscc"): 10, (PENALTY, "quality:uscc:reference"): 8})

    # Flagged: delivered with the header naming exactly the failed rules; clean ones without it.
    deliveries = collect(bus.settings, "tax-levy", ENTERPRISES - 10, idle_timeout_s=15).deliveries
    assert len(deliveries) == ENTERPRISES - 10
    for delivery in deliveries:
        key = (ENTERPRISE, delivery.record_id or "")
        assert key not in rejected
        assert list(delivery.quality) == failures[key]
    assert sum(1 for d in deliveries if d.quality) == len(flagged)

    # The metrics match the count made here.
    def results(code: str) -> Counter[str]:
        keys = [k for k in published if k[0] == code]
        return Counter("rejected" if k in rejected else "flagged" if k in flagged else "passed" for k in keys)

    counted = eventually(lambda: metric(url, "sharebus_quality_records_total"), lambda n: n >= len(published))
    assert counted == len(published)
    for code in (ENTERPRISE, PENALTY):
        wanted = results(code)
        for result in ("passed", "flagged", "rejected"):
            assert metric(url, "sharebus_quality_records_total", data_class=code, result=result) == wanted[result]
        records = [r for (c, _), r in published.items() if c == code]
        # Completeness is filled / declared over the counters (docs/quality.md), summed over workers.
        filled_total = metric(url, "sharebus_quality_fields_filled_total", data_class=code)
        declared_total = metric(url, "sharebus_quality_fields_declared_total", data_class=code)
        assert declared_total == len(records) * len(records[0])
        assert filled_total == sum(filled(r) for r in records)
        assert metric(url, "sharebus_quality_delivery", data_class=code) == 1.0
    name_failures = sum(1 for f in failures.values() if "name:required" in f)
    assert (
        metric(url, "sharebus_quality_rule_failures_total", data_class=ENTERPRISE, rule="name:required")
        == name_failures
    )
    # Three of the provider's five classes were never published in this namespace: the subtraction shows.
    assert metric(url, "sharebus_quality_delivery", data_class="301001003/000001") == 0.0
    # A class with no record yet has no quality counters: series begin with its first record.
    never = [line for line in scraped(url).text.splitlines() if '"301001003/000001"' in line]
    assert never  # the class has other series (delivery, freshness)
    assert not [line for line in never if line.startswith("sharebus_quality_records_total")]
    assert metric(url, "sharebus_quality_delivery_ratio", provider="AMR") == pytest.approx(2 / 5)

    # The audit trail: every event of every published record carries its quality object (contract A).
    # 30 enterprise records to two subscribers, 10 rejected; 4 penalties denied (no grant), 8 rejected.
    expected_events = 30 * 2 + 10 + 4 + 8

    def audit() -> list[dict[str, Any]]:
        return trail_events(bus.access, bus.topics.audit)

    events = eventually(audit, lambda found: len(found) >= expected_events, timeout_s=60)
    assert len(events) == expected_events
    for event in events:
        key = (event["data_class"], event["record_id"])
        record = published[key]
        assert event["quality"] == {"failed": failures[key], "filled": filled(record), "fields": len(record)}
        if key in rejected:
            assert (event["decision"], event["consumer"]) == ("deny", None)
            assert event["reason"] == f"quality:{failures[key][0]}"
    denied_for_quality = {(e["data_class"], e["record_id"]) for e in events if str(e["reason"]).startswith("quality:")}
    assert denied_for_quality == rejected
