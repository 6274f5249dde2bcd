"""GET /v1/backfills[/{id}] answer from the gateway's followed view of the backfill topic, never by reading
the whole topic per request; a request the caller logged is in its next read; the view answers 503
(with the reason) rather than "no requests" until it has read the topic to its end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharebus_core import topic_reader
from sharebus_core.backfill_log import BackfillEvent, BackfillState
from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_gateway import backfill_api
from sharebus_gateway.auth import Caller, caller
from sharebus_gateway.backfills_view import BackfillView
from sharebus_ops import backfill as ops_backfill
from tests.unit.fixtures import FIXTURE_CATALOGUE
from tests.unit.memory_log import Broker, Consumer

TOPIC = "unit.backfill"
ENTERPRISE = "301001001/000001"  # unconditional: tax-levy subscribes to it in the fixture catalogue
CATALOGUE = load_catalogue(FIXTURE_CATALOGUE)
TAX = Caller("tax-levy", "TAX", "k-tax")


def event(request_id: str, consumer: str, state: BackfillState = BackfillState.REQUESTED) -> bytes:
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    logged = BackfillEvent(
        request_id=request_id, state=state, consumer=consumer, data_class=ENTERPRISE, requested_by="TAX", at=at
    )
    return logged.model_dump_json().encode()


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    broker = Broker()
    monkeypatch.setattr(KafkaAccess, "consumer", lambda _self, _config: Consumer(broker, TOPIC))
    monkeypatch.setattr(ops_backfill, "write_event", lambda _a, _t, e: broker.append(None, TOPIC, b"k", event_json(e)))

    def whole_topic_read(*_a: object, **_kw: object) -> None:
        raise AssertionError("a request read the whole backfill topic")

    monkeypatch.setattr(topic_reader, "read_topic", whole_topic_read)
    monkeypatch.setattr(ops_backfill, "latest_events", whole_topic_read)
    return broker


def event_json(e: BackfillEvent) -> bytes:
    return e.model_dump_json().encode()


@pytest.fixture
def view() -> Iterator[BackfillView]:
    view = BackfillView(KafkaAccess(bootstrap="unused:9092"), TOPIC, wait_s=5)
    yield view
    view.stop()


def client(view: BackfillView) -> TestClient:
    app = FastAPI()
    app.include_router(backfill_api.router)
    grants = SimpleNamespace(control=SimpleNamespace(verifier=None), latest=dict)
    app.state.gateway = SimpleNamespace(
        catalogue=CATALOGUE,
        settings=SimpleNamespace(kafka=KafkaAccess(bootstrap="unused:9092")),
        topics=SimpleNamespace(backfill=TOPIC, grants="unit.grants"),
        grants=grants,
        backfills=view,
    )
    app.dependency_overrides[caller] = lambda: TAX
    return TestClient(app)


def test_requests_are_listed_from_the_view_and_a_new_one_is_in_the_next_read(
    broker: Broker, view: BackfillView
) -> None:
    """Before, each GET read the whole backfill topic (read_topic, here an error)."""
    broker.append(None, TOPIC, b"bf-1", event("bf-1", "tax-levy"))
    broker.append(None, TOPIC, b"bf-2", event("bf-2", "hrss-si"))  # another department's
    broker.append(None, TOPIC, b"bf-1", event("bf-1", "tax-levy", BackfillState.DONE))
    view.start()
    assert view.follower.caught_up.wait(5)
    http = client(view)
    assert [(e["request_id"], e["state"]) for e in http.get("/v1/backfills").json()] == [("bf-1", "done")]
    assert http.get("/v1/backfills/bf-1").json()["state"] == "done"
    assert http.get("/v1/backfills/bf-2").status_code == 404
    logged = http.post("/v1/backfills", json={"data_class": ENTERPRISE, "system": "tax-levy"})
    assert logged.status_code == 201, logged.text
    request_id = logged.json()["request_id"]
    assert http.get(f"/v1/backfills/{request_id}").json()["state"] == "requested"


def test_a_view_not_caught_up_is_503_not_an_empty_list(broker: Broker, view: BackfillView) -> None:
    answer = client(view).get("/v1/backfills")
    assert answer.status_code == 503
    assert "starting" in answer.json()["detail"]


def test_a_topic_not_provisioned_yet_is_a_reader_error_never_an_empty_view(
    broker: Broker, view: BackfillView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, a follower of a missing topic took "no partitions" for caught up and never followed it."""

    class Unprovisioned(Consumer):
        def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
            return SimpleNamespace(topics={topic: SimpleNamespace(partitions={}, error="UNKNOWN_TOPIC_OR_PART")})

    monkeypatch.setattr(KafkaAccess, "consumer", lambda _self, _config: Unprovisioned(broker, TOPIC))
    view.follower.restart_backoff_s = 60
    view.start()
    assert "does not exist" in (view.follower.wait_error(5) or "")
    assert not view.follower.caught_up.is_set()
    answer = client(view).get("/v1/backfills")
    assert answer.status_code == 503
    assert "does not exist" in answer.json()["detail"]
