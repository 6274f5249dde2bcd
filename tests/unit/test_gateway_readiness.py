"""The gateway's /readyz answers anyone, so it must cost nothing: it reports state kept by background
readers (one broker probe thread, the followers), never a Kafka client made per request."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException
from fastapi.testclient import TestClient
from pydantic import SecretStr

from sharebus_core.catalogue import load_catalogue
from sharebus_core.kafka import KafkaAccess
from sharebus_core.signing import ensure_key_pair
from sharebus_gateway.app import create_app
from sharebus_gateway.broker_probe import BrokerProbe
from sharebus_gateway.settings import GatewaySettings
from tests.unit.fixtures import FIXTURE_CATALOGUE


class Admin:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.calls = 0

    def list_topics(self, *, timeout: float) -> object:
        self.calls += 1
        if self.fails:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        return object()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reachable(probe: BrokerProbe) -> bool:
    # A call, not the property: the type checker would take the property for a constant between asserts.
    return probe.reachable


def caught_up() -> SimpleNamespace:
    event = threading.Event()
    event.set()
    return SimpleNamespace(caught_up=event)


def test_readyz_makes_no_kafka_client_per_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, every GET /readyz built a new admin client (threads, TLS, SCRAM) and listed the topics."""
    signing, verify = ensure_key_pair(tmp_path, "control")
    settings = GatewaySettings(
        namespace="unit",
        catalogue_dir=FIXTURE_CATALOGUE,
        control_signing_key_file=signing,
        control_verify_key_file=verify,
        scrape_token=SecretStr("t" * 32),
    )
    made: list[str] = []

    def counted_admin(_self: KafkaAccess, *_a: object, **_kw: object) -> Admin:
        made.append("admin")
        return Admin()

    monkeypatch.setattr(KafkaAccess, "admin", counted_admin)
    app = create_app(settings, load_catalogue(FIXTURE_CATALOGUE))
    admin = Admin()
    probe = BrokerProbe(lambda: admin)
    probe.probe()
    app.state.gateway = SimpleNamespace(
        broker=probe,
        catalogue=load_catalogue(FIXTURE_CATALOGUE),
        grant_follower=caught_up(),
        keys=SimpleNamespace(follower=caught_up()),
        disputes=SimpleNamespace(view=SimpleNamespace(follower=caught_up())),
        backfills=SimpleNamespace(follower=caught_up()),
        metrics=SimpleNamespace(
            requests=SimpleNamespace(labels=lambda *a: SimpleNamespace(inc=lambda: None)),
            latency=SimpleNamespace(labels=lambda *a: SimpleNamespace(observe=lambda _v: None)),
        ),
    )
    client = TestClient(app)  # no lifespan: nothing started but what is set above
    for _ in range(20):
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.text
        assert answer.json()["broker"] is True
    assert made == []
    assert admin.calls == 1


def test_the_probe_keeps_one_admin_client_and_reports_its_last_answer() -> None:
    clients: list[Admin] = []

    def make() -> Admin:
        clients.append(Admin())
        return clients[-1]

    clock = Clock()
    probe = BrokerProbe(make, interval_s=5.0, clock=clock)
    assert not reachable(probe)  # never asked: not known to be reachable
    assert probe.probe() is True
    assert reachable(probe)
    clients[0].fails = True
    assert probe.probe() is False
    assert not reachable(probe)
    clients[0].fails = False
    probe.probe()
    assert len(clients) == 1
    assert clients[0].calls == 3


def test_an_answer_the_probe_thread_stopped_refreshing_is_not_ready() -> None:
    clock = Clock()
    probe = BrokerProbe(Admin, interval_s=5.0, clock=clock)
    probe.probe()
    clock.now += 15.0
    assert reachable(probe)
    clock.now += 0.1
    assert not reachable(probe)
