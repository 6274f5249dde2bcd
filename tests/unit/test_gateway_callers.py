"""Who a gateway caller is, and what it may publish: a key acts only as its system as the catalogue has
it now, and only the system owning a class publishes it over HTTP (records and dispute corrections),
as Kafka's ACLs allow. The HTTP routes run on a stand-in Gateway: no Kafka."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from starlette.requests import Request

from sharebus_core.audit_fact import AuditFact
from sharebus_core.catalogue import Catalogue, load_catalogue
from sharebus_disputes import DisputeLogError
from sharebus_gateway import disputes_api, publish
from sharebus_gateway.auth import Caller, authenticate, caller
from sharebus_gateway.keys import ApiKey, IssuedKey, KeyKind, new_key
from sharebus_gateway.limits import TokenBuckets
from sharebus_gateway.metrics import GatewayMetrics
from sharebus_rules.disputes import DisputeState
from tests.unit.fixtures import FIXTURE_CATALOGUE

ENTERPRISE = "301001001/000001"  # AMR's, owned by its system amr-reg
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
CATALOGUE = load_catalogue(FIXTURE_CATALOGUE)
# AMR with a second system, amr-lic: same department as amr-reg, but it owns no enterprise class.
TWO_SYSTEMS = dataclasses.replace(CATALOGUE, department_of_system={**CATALOGUE.department_of_system, "amr-lic": "AMR"})
AMR_REG, AMR_LIC = Caller("amr-reg", "AMR", "k-reg"), Caller("amr-lic", "AMR", "k-lic")
RECORD = {
    "uscc": "U1",
    "name": "n",
    "legal_rep_name": "l",
    "registered_capital": 1.0,
    "established": "2020-01-02",
    "seq": 1,
}


class MemoryAudit:
    def __init__(self) -> None:
        self.facts: list[AuditFact] = []

    def write(self, fact: AuditFact, timeout_s: float = 10.0) -> None:
        self.facts.append(fact)

    def reasons(self) -> list[tuple[Any, str | None]]:
        return [(f.extra["action"], f.decisions[0].reason) for f in self.facts]


class Keys:
    """The key view's lookup: each issued key's token finds its entry."""

    def __init__(self, *issued: IssuedKey) -> None:
        self._keys = {i.token.get_secret_value(): i.key for i in issued}

    def authenticate(self, token: str, kind: KeyKind) -> ApiKey | None:
        key = self._keys.get(token)
        return key if key is not None and key.kind is kind else None


class Publisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any], str | None]] = []
        self.ids: list[str] = []

    @contextlib.contextmanager
    def transaction(self, timeout_s: float) -> Iterator[None]:
        yield

    def publish(self, code: str, record: dict[str, Any], trace_id: str | None = None, **kw: Any) -> str:
        self.published.append((code, record, kw.get("corrects")))
        # As the SDK: the record id given, else a new one.
        self.ids.append(str(kw.get("record_id") or f"r-{len(self.published)}"))
        return self.ids[-1]


def gateway(catalogue: Catalogue, **more: Any) -> SimpleNamespace:
    publisher = Publisher()
    return SimpleNamespace(
        catalogue=catalogue,
        settings=SimpleNamespace(max_batch_records=100, publish_timeout_s=1.0),
        metrics=GatewayMetrics(CollectorRegistry()),
        audit=MemoryAudit(),
        rate_limits=TokenBuckets(100, 100),
        publisher=publisher,
        publishers=SimpleNamespace(get=lambda _department: (publisher, threading.Lock())),
        **more,
    )


def connection(gw: SimpleNamespace) -> Request:
    app = FastAPI()
    app.state.gateway = gw
    return Request({"type": "http", "method": "GET", "path": "/v1/identity", "headers": [], "app": app})


# Authentication: the catalogue decides the caller's department, not the key.


def test_a_current_key_is_its_system_in_its_catalogue_department() -> None:
    issued = new_key("amr-reg", "AMR", NOW)
    gw = gateway(CATALOGUE, keys=Keys(issued))
    who = authenticate(connection(gw), issued.token.get_secret_value())
    assert who == Caller("amr-reg", "AMR", issued.key.key_id)
    assert gw.audit.facts == []


def test_a_key_of_a_system_removed_from_the_catalogue_is_refused_and_audited() -> None:
    issued = new_key("psb-case", "PSB", NOW)
    without = {s: d for s, d in CATALOGUE.department_of_system.items() if s != "psb-case"}
    gw = gateway(dataclasses.replace(CATALOGUE, department_of_system=without), keys=Keys(issued))
    with pytest.raises(HTTPException) as info:
        authenticate(connection(gw), issued.token.get_secret_value())
    assert info.value.status_code == 401
    assert "psb-case is no longer in the catalogue" in info.value.detail
    assert gw.audit.reasons() == [("authenticate", "system_not_in_catalogue")]
    assert gw.audit.facts[0].decisions[0].consumer == "psb-case"
    samples = gw.metrics.registry.get_sample_value
    assert samples("sharebus_gateway_stale_keys_total", {"reason": "system_not_in_catalogue"}) == 1


def test_a_key_of_a_system_moved_to_another_department_acts_for_neither() -> None:
    issued = new_key("psb-case", "PSB", NOW)
    moved = {**CATALOGUE.department_of_system, "psb-case": "HRSS"}
    gw = gateway(dataclasses.replace(CATALOGUE, department_of_system=moved), keys=Keys(issued))
    with pytest.raises(HTTPException) as info:
        authenticate(connection(gw), issued.token.get_secret_value())
    assert info.value.status_code == 401
    assert "the catalogue now puts psb-case in HRSS" in info.value.detail
    assert gw.audit.reasons() == [("authenticate", "department_changed")]


def test_an_open_data_key_is_still_no_system_key() -> None:
    issued = new_key("tax-levy", "TAX", NOW)
    public = IssuedKey(issued.key.model_copy(update={"kind": KeyKind.OPEN_DATA}), issued.token)
    gw = gateway(CATALOGUE, keys=Keys(public))
    with pytest.raises(HTTPException, match="not valid"):
        authenticate(connection(gw), issued.token.get_secret_value())
    assert gw.audit.facts == []


# Publishing: the owning system only, as Kafka's ACLs have it.


def client(gw: SimpleNamespace, who: Caller) -> TestClient:
    app = FastAPI()
    app.include_router(publish.router)
    app.include_router(disputes_api.router)
    app.state.gateway = gw
    app.dependency_overrides[caller] = lambda: who
    return TestClient(app)


def test_the_owning_system_publishes_its_class() -> None:
    gw = gateway(TWO_SYSTEMS)
    response = client(gw, AMR_REG).post(f"/v1/classes/{ENTERPRISE}/records", json=RECORD)
    assert response.status_code == 200, response.text
    assert [code for code, _record, _corrects in gw.publisher.published] == [ENTERPRISE]


def test_another_system_of_the_same_department_may_not_publish_it() -> None:
    gw = gateway(TWO_SYSTEMS)
    response = client(gw, AMR_LIC).post(f"/v1/classes/{ENTERPRISE}/records", json=RECORD)
    assert response.status_code == 403
    assert "it belongs to system amr-reg" in response.json()["detail"]
    assert gw.publisher.published == []
    assert gw.audit.reasons() == [("publish", "not_owning_system")]


class Disputes:
    """The dispute service's part the answer and correction routes use, for one dispute of ``code``."""

    def __init__(self, state: DisputeState) -> None:
        latest = SimpleNamespace(
            provider="AMR", data_class=ENTERPRISE, record_id="r-0", model_dump=lambda **_kw: {"id": "d-1"}
        )
        self.dispute = SimpleNamespace(latest=latest, state=state, is_past_deadline=lambda _now: False)
        self.steps: list[str] = []

    def visible(self, _dispute_id: str, _department: str) -> SimpleNamespace:
        return self.dispute

    def answer(self, _dispute: object, **_kw: Any) -> None:
        self.steps.append("answer")

    def corrected(self, _dispute: object, **_kw: Any) -> None:
        self.steps.append("corrected")

    def now(self) -> dt.datetime:
        return NOW


def test_a_correction_is_published_by_the_owning_system_only() -> None:
    service = Disputes(DisputeState.ANSWERED)
    gw = gateway(TWO_SYSTEMS, disputes=service)
    refused = client(gw, AMR_LIC).post("/v1/disputes/d-1/correction", json={"record": RECORD})
    assert refused.status_code == 403
    assert "it belongs to system amr-reg" in refused.json()["detail"]
    assert (gw.publisher.published, service.steps) == ([], [])
    assert gw.audit.reasons() == [("dispute.correct", "not_owning_system")]

    allowed = client(gw, AMR_REG).post("/v1/disputes/d-1/correction", json={"record": RECORD})
    assert allowed.status_code == 200, allowed.text
    assert [(code, corrects) for code, _record, corrects in gw.publisher.published] == [(ENTERPRISE, "r-0")]
    assert service.steps == ["corrected"]


def test_a_confirm_with_a_correction_from_another_system_changes_nothing() -> None:
    service = Disputes(DisputeState.OPEN)
    gw = gateway(TWO_SYSTEMS, disputes=service)
    body = {"decision": "confirm", "answer": "it was wrong", "correction": RECORD}
    response = client(gw, AMR_LIC).post("/v1/disputes/d-1/answer", json=body)
    assert response.status_code == 403
    assert (gw.publisher.published, service.steps) == ([], [])  # not answered either: nothing half done


class FailingLog(Disputes):
    """The dispute log refuses the ``corrected`` step once, after the correction was published."""

    def __init__(self) -> None:
        super().__init__(DisputeState.ANSWERED)
        self.failures = 1

    def corrected(self, _dispute: object, **kw: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise DisputeLogError("the disputes topic is unavailable")
        self.steps.append(f"corrected {kw['correction_record_id']}")


def test_a_correction_sent_again_after_a_503_is_the_same_record_so_subscribers_drop_the_repeat() -> None:
    service = FailingLog()
    gw = gateway(TWO_SYSTEMS, disputes=service)
    amr = client(gw, AMR_REG)
    failed = amr.post("/v1/disputes/d-1/correction", json={"record": RECORD})
    assert failed.status_code == 503
    assert amr.post("/v1/disputes/d-1/correction", json={"record": RECORD}).status_code == 200
    ids = [gw.publisher.ids[0], gw.publisher.ids[1]]
    # Published twice (the first one did reach Kafka), but as one record: every edge drops the repeat.
    assert ids[0] == ids[1]
    assert service.steps == [f"corrected {ids[0]}"]
    # Another corrected record is another correction, with its own id.
    assert amr.post("/v1/disputes/d-1/correction", json={"record": {**RECORD, "seq": 2}}).status_code == 200
    assert gw.publisher.ids[2] != ids[0]
