"""The router's quality path without Kafka: reject to the dead-letter topic, flag with the bus's header,
the quality object in every fact, the counters and the scores."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sharebus_core import headers as h
from sharebus_core.catalogue import load_catalogue
from sharebus_core.grants import Grant, GrantState
from sharebus_core.kafka import KafkaAccess
from sharebus_demo.fake import RecordFaker
from sharebus_router.dead_letters import DLQ_REASON
from sharebus_router.freshness import FreshnessTracker
from sharebus_router.held_records import HeldRecord
from sharebus_router.key_views import KeyFollower, key_admission, referenced_classes
from sharebus_router.quality_gate import RESULTS, QualityCounters, QualityGate, QualityScores
from sharebus_rules.freshness import FreshnessPolicy
from sharebus_rules.periods import window_containing
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.router_harness import TOPICS, Harness
from tests.unit.test_backfill_grants import backfiller, message, request
from tests.unit.test_router_release import releaser

ENTERPRISE = "301001001/000001"
PENALTY = "301001002/000001"
STATS = "301001004/000001"
GOOD_USCC = "91310110666007217T"
BAD_USCC = "91310110666007217A"
RULES = {
    ENTERPRISE: {
        "on_failure": "flag",
        "rules": [
            {"field": "uscc", "kind": "uscc", "on_failure": "reject"},
            {"field": "name", "kind": "required"},
            {"field": "registered_capital", "kind": "range", "min": 0},
        ],
    },
    PENALTY: {"on_failure": "reject", "rules": [{"field": "uscc", "kind": "reference", "data_class": ENTERPRISE}]},
    STATS: {
        "on_failure": "flag",
        "rules": [
            {"field": "district_code", "kind": "regex", "pattern": "5001[0-9]{2}"},
            {"field": "issued", "kind": "range", "min": 0, "max": 10, "on_failure": "reject"},
        ],
    },
}


class Keys:
    def __init__(self) -> None:
        self.keys = {GOOD_USCC}
        self.ready = True

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __len__(self) -> int:
        return len(self.keys)


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
def keys() -> Keys:
    return Keys()


@pytest.fixture
def harness(tmp_path: Path, keys: Keys) -> Harness:
    harness = Harness(load_catalogue(ruled_catalogue(tmp_path)))
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    harness.handler.quality = QualityGate(harness.catalogue, lambda: now, {ENTERPRISE: keys})
    harness.registry.register(QualityCounters(harness.handler.quality))
    return harness


def enterprise(**changes: Any) -> dict[str, Any]:
    record = {
        "uscc": GOOD_USCC,
        "name": "重庆示例科技有限公司",
        "legal_rep_name": "张三",
        "registered_capital": 100.0,
        "established": dt.date(2020, 1, 2),
        "seq": 1,
        "note": None,
    }
    return {**record, **changes}


def penalty(uscc: str) -> dict[str, Any]:
    return {"uscc": uscc, "person_id_number": "11010519491231002X", "amount": 500.0, "seq": 1}


def counted(harness: Harness, code: str, result: str) -> float:
    labels = {"provider": "AMR", "data_class": code, "result": result}
    return harness.value("sharebus_quality_records_total", labels)


def test_a_clean_record_is_delivered_unflagged_and_its_fact_carries_quality(harness: Harness) -> None:
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise()))
    assert len(harness.sent) == 2
    assert all(h.QUALITY not in dict(headers) for *_, headers in harness.sent)
    [fact] = harness.facts
    assert fact["quality"] == {"failed": [], "filled": 6, "fields": 7}
    assert counted(harness, ENTERPRISE, "passed") == 1


def test_a_rejecting_rule_sends_the_record_to_the_dead_letters_and_audits_the_denial(harness: Harness) -> None:
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise(uscc=BAD_USCC, name=" ")))
    [(topic, _key, _value, headers)] = harness.sent
    assert topic == TOPICS.dead_letter
    assert dict(headers)[DLQ_REASON] == b"quality:uscc:uscc"
    [fact] = harness.facts
    assert fact["quality"] == {"failed": ["uscc:uscc", "name:required"], "filled": 5, "fields": 7}
    assert fact["record_id"] == "r1"
    assert fact["decisions"] == [
        {"consumer": None, "grant_id": None, "decision": "deny", "reason": "quality:uscc:uscc", "payload_sha256": None}
    ]
    assert counted(harness, ENTERPRISE, "rejected") == 1
    assert harness.value("sharebus_dead_letters_total", {"data_class": ENTERPRISE, "reason": "quality"}) == 1
    rule = {"provider": "AMR", "data_class": ENTERPRISE, "rule": "name:required"}
    assert harness.value("sharebus_quality_rule_failures_total", rule) == 1


def test_a_flagging_rule_delivers_with_the_bus_header_naming_the_rules(harness: Harness) -> None:
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise(name="", registered_capital=-1.0)))
    assert [topic for topic, *_ in harness.sent] == [TOPICS.delivery("tax-levy"), TOPICS.delivery("psb-case")]
    for *_, headers in harness.sent:
        assert dict(headers)[h.QUALITY] == b"name:required,registered_capital:range"
    assert harness.facts[0]["quality"]["failed"] == ["name:required", "registered_capital:range"]
    assert counted(harness, ENTERPRISE, "flagged") == 1


def narrow_grant() -> Grant:
    """hrss-si, granted the enterprise class's credit code and capital only (no name)."""
    now = dt.datetime.now(dt.UTC)
    return Grant.model_validate(
        {
            "grant_id": "g-narrow",
            "data_class": ENTERPRISE,
            "provider": "AMR",
            "consumer": "hrss-si",
            "consumer_department": "HRSS",
            "requester": "Wang",
            "purpose": "p",
            "scenario": "s",
            "fields": ("uscc", "registered_capital"),
            "state": GrantState.APPROVED,
            "applied_at": now,
            "decided_at": now,
            "automatic": True,
        }
    )


def test_the_flag_names_no_rule_of_a_field_the_subscriber_does_not_receive(harness: Harness) -> None:
    harness.grant(narrow_grant())
    flawed = enterprise(name="", registered_capital=-1.0)
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, flawed))
    flags = {topic: dict(headers).get(h.QUALITY) for topic, _k, _v, headers in harness.sent}
    assert flags[TOPICS.delivery("tax-levy")] == b"name:required,registered_capital:range"
    # That the name it was not granted is blank is news about that name: not hrss-si's to know.
    assert flags[TOPICS.delivery("hrss-si")] == b"registered_capital:range"

    harness.sent.clear()
    harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise(name="")))
    flags = {topic: dict(headers).get(h.QUALITY) for topic, _k, _v, headers in harness.sent}
    assert flags[TOPICS.delivery("hrss-si")] is None
    assert harness.facts[-1]["quality"]["failed"] == ["name:required"]  # the audit keeps every failure


def test_a_backfill_flags_only_the_rules_of_fields_received(harness: Harness) -> None:
    harness.grant(narrow_grant())
    flawed = harness.encode(ENTERPRISE, enterprise(name="", registered_capital=-1.0))
    made = backfiller(harness, ENTERPRISE, None, [message(ENTERPRISE, flawed, 0)])
    points = {p: int(p == 0) for p in range(harness.catalogue.data_class(ENTERPRISE).partitions)}
    harness.table.ledger.record("hrss-si", ENTERPRISE, "g-narrow", TOPICS.source(ENTERPRISE), points)
    outcome = asyncio.run(made.serve(request(ENTERPRISE).model_copy(update={"consumer": "hrss-si"})))
    assert outcome.records == 1
    [headers] = [headers for topic, _k, _v, headers in harness.sent if topic == TOPICS.delivery("hrss-si")]
    assert dict(headers)[h.QUALITY] == b"registered_capital:range"


def test_a_release_flags_only_the_rules_of_fields_received(harness: Harness) -> None:
    harness.grant(
        narrow_grant().model_copy(
            update={
                "data_class": STATS,
                "consumer": "tax-levy",
                "fields": ("issued", "seq"),
                "consumer_department": "TAX",
            }
        )
    )
    flawed = harness.encode(STATS, {"district_code": "x", "issued": 4, "seq": 2})
    held = [HeldRecord(b"k", flawed, [(h.RECORD_ID, b"r2")], TOPICS.source(STATS), 0, 2)]
    window = window_containing(harness.catalogue.data_class(STATS).update, dt.datetime.now(dt.UTC))
    assert asyncio.run(releaser(harness).release(STATS, window, held)) == 1
    flags = {topic: dict(headers).get(h.QUALITY) for topic, _k, value, headers in harness.sent if value is not None}
    assert flags[TOPICS.delivery("hrss-si")] == b"district_code:regex"
    assert flags[TOPICS.delivery("tax-levy")] is None


def test_a_publishers_quality_header_never_passes_as_the_bus_s(harness: Harness) -> None:
    value = harness.encode(ENTERPRISE, enterprise())
    harness.handle_raw(ENTERPRISE, value, [(h.DATA_CLASS, ENTERPRISE.encode()), (h.QUALITY, b"")])
    harness.handle_raw(ENTERPRISE, value, [(h.QUALITY, b"forged:rule")])
    for *_, headers in harness.sent:
        assert h.QUALITY not in dict(headers)
    assert dict(harness.sent[-1][3])["publisher-" + h.QUALITY] == b"forged:rule"


def test_a_reference_passes_only_for_a_known_key_and_fails_closed(harness: Harness, keys: Keys) -> None:
    harness.handle(PENALTY, harness.encode(PENALTY, penalty(GOOD_USCC)))
    assert harness.sent == []  # no grant: denied, not dead-lettered
    assert harness.facts[-1]["quality"]["failed"] == []
    harness.handle(PENALTY, harness.encode(PENALTY, penalty("unknown")))
    assert dict(harness.sent[-1][3])[DLQ_REASON] == b"quality:uscc:reference"
    keys.ready = False
    harness.handle(PENALTY, harness.encode(PENALTY, penalty(GOOD_USCC)))
    [(_topic, _key, _value, headers)] = harness.sent[-1:]
    assert b"not caught up (fail closed)" in dict(headers)["sharebus-dlq-detail"]
    assert counted(harness, PENALTY, "rejected") == 2


def test_held_records_are_judged_when_held_and_flagged_at_release(harness: Harness) -> None:
    harness.handle(STATS, harness.encode(STATS, {"district_code": "500103", "issued": 11, "seq": 1}))
    assert harness.sent[-1][0] == TOPICS.dead_letter  # rejected at once, never held
    flawed = harness.encode(STATS, {"district_code": "x", "issued": 4, "seq": 2})
    harness.handle(STATS, flawed, offset=2)
    assert harness.sent[-1][0] == TOPICS.held
    assert h.QUALITY not in dict(harness.sent[-1][3])  # set at release, where bus_headers runs again
    assert counted(harness, STATS, "flagged") == 1
    held = [HeldRecord(b"k", flawed, [(h.RECORD_ID, b"r2")], TOPICS.source(STATS), 0, 2)]
    batches = releaser(harness)
    window = window_containing(harness.catalogue.data_class(STATS).update, dt.datetime.now(dt.UTC))
    harness.sent.clear()
    assert asyncio.run(batches.release(STATS, window, held)) == 1
    record = next(
        headers for topic, _k, value, headers in harness.sent if value is not None and topic != TOPICS.audit_facts
    )
    assert dict(record)[h.QUALITY] == b"district_code:regex"
    # The window's facts go out before its deliveries (release.py: no delivery without its fact).
    [audit] = [value for topic, _k, value, _h in harness.sent if topic == TOPICS.audit_facts]
    assert audit is not None
    assert b'"quality":{"failed":["district_code:regex"],"filled":3,"fields":3}' in audit
    assert counted(harness, STATS, "flagged") == 1  # not counted twice


def test_scores_per_provider_and_class(harness: Harness) -> None:
    for changes in ({}, {"registered_capital": -5.0}, {"note": "n"}, {"uscc": BAD_USCC}):
        harness.handle(ENTERPRISE, harness.encode(ENTERPRISE, enterprise(**changes)))
    assert harness.handler.quality is not None
    now = 1_800_000_000.0
    freshness = FreshnessTracker(harness.catalogue, lambda: now, FreshnessPolicy())
    freshness.last[ENTERPRISE] = now - 60
    registry = CollectorRegistry()
    registry.register(QualityScores(harness.catalogue, harness.handler.quality, freshness, dt.timedelta(hours=24)))
    registry.register(QualityCounters(harness.handler.quality))

    def sample(name: str, code: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"provider": "AMR", "data_class": code, **labels})

    # Validity and completeness are ratios of the counters (docs/quality.md), not gauges of their own.
    results = {r: sample("sharebus_quality_records_total", ENTERPRISE, result=r) for r in RESULTS}
    assert results == {"passed": 2, "flagged": 1, "rejected": 1}
    filled = sample("sharebus_quality_fields_filled_total", ENTERPRISE)
    assert (filled, sample("sharebus_quality_fields_declared_total", ENTERPRISE)) == (6 + 6 + 7 + 6, 28)
    for gone in ("validity", "completeness", "timeliness"):
        assert sample(f"sharebus_quality_{gone}", ENTERPRISE) is None
    # Nothing read: no series rather than a made-up score, and none to carry on a worker without the class.
    assert sample("sharebus_quality_records_total", PENALTY, result="passed") is None
    assert sample("sharebus_quality_fields_declared_total", PENALTY) is None
    assert sample("sharebus_quality_delivery", ENTERPRISE) == 1.0
    assert sample("sharebus_quality_delivery", PENALTY) == 0.0  # catalogued, never published: the subtraction shows
    classes = len(harness.catalogue.classes_of("AMR"))
    assert registry.get_sample_value("sharebus_quality_delivery_ratio", {"provider": "AMR"}) == 1 / classes


class _Message:
    def __init__(self, key: bytes | None, value: bytes | None = b"v") -> None:
        self._key, self._value = key, value

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


def test_a_key_view_admits_only_keys_its_class_would_not_reject_and_stays_bounded(tmp_path: Path) -> None:
    catalogue = load_catalogue(ruled_catalogue(tmp_path))
    assert referenced_classes(catalogue) == {ENTERPRISE}
    admit = key_admission(catalogue.data_class(ENTERPRISE))
    assert admit(GOOD_USCC)
    assert not admit(BAD_USCC)  # rejected by the class's own uscc rule: its key must not count
    view = KeyFollower(KafkaAccess(bootstrap="127.0.0.1:1"), "t", ENTERPRISE, max_keys=2, admit=admit)
    for key in (GOOD_USCC.encode(), BAD_USCC.encode(), None, GOOD_USCC.encode()):
        view._on_record(_Message(key))  # type: ignore[arg-type]
    view._on_record(_Message(b"91500000MA0000001X", None))  # type: ignore[arg-type]  # a tombstone
    assert (len(view), GOOD_USCC in view, BAD_USCC in view) == (1, True, False)
    faker = RecordFaker(seed=1)
    view._on_record(_Message(faker.uscc().encode()))  # type: ignore[arg-type]
    assert (len(view), view.overflowed) == (2, False)
    view._on_record(_Message(faker.uscc().encode()))  # type: ignore[arg-type]
    # Past its bound the view fails closed (``up``, hence ``ready``, is False) rather than forget keys.
    assert (len(view), view.overflowed) == (2, True)
