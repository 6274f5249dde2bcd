"""Backfill on the real broker: a new subscriber gets the retained history once, then live records, no gap."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from sharebus_cli.main import main as cli
from sharebus_core import headers as h
from sharebus_core.backfill_log import BackfillState, wait_outcome
from sharebus_grants import GrantService
from sharebus_ops.backfill import request_backfill
from sharebus_rules.grant_workflow import GrantRefused
from sharebus_sdk import Publisher, PublisherSettings
from tests.integration.conftest import Bus, ClockedBus, GatewayBus
from tests.support.kafka import end_offsets, eventually, metric, read_all
from tests.support.keys import control_keys
from tests.support.records import (
    ENTERPRISE,
    PENALTY,
    STATS,
    enterprise,
    penalty,
    publish_enterprises,
    publish_records,
    stats,
)
from tests.support.router import wait_routed
from tests.support.subscribe import collect


def grants(bus: Bus) -> GrantService:
    return GrantService(bus.catalogue, bus.access, bus.topics.grants, control=control_keys())


def backfill(bus: Bus, department: str, system: str, data_class: str) -> int:
    request = request_backfill(
        bus.catalogue, bus.access, bus.topics, department, system, data_class, verifier=control_keys().verifier
    )
    outcome = wait_outcome(bus.access, bus.topics.backfill, request.request_id, timeout_s=60)
    assert outcome is not None
    assert outcome.state is BackfillState.DONE, outcome.reason
    assert outcome.records is not None
    return outcome.records


class Stream:
    """Publishes enterprise records one after another in a thread until stopped."""

    def __init__(self, bus: Bus, first: int) -> None:
        self.bus, self.next = bus, first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        settings = PublisherSettings.model_validate(self.bus.settings.model_dump())
        with Publisher("AMR", settings, self.bus.catalogue) as pub:
            while not self._stop.is_set():
                pub.publish(ENTERPRISE, enterprise(self.next))
                self.next += 1
                time.sleep(0.002)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_backfill_hands_over_to_live_delivery_without_gap_or_duplicate(bus: Bus) -> None:
    """hrss-si starts receiving enterprise records (unconditional: granted on request) while they keep coming."""
    publish_enterprises(bus.settings, range(300))
    # Routed before the grant, so that they are history: records the router has not read when the grant
    # takes effect are delivered live, rightly, which a loaded machine made of most of them.
    url = bus.router.metrics_url
    routed = eventually(
        lambda: metric(url, "sharebus_records_received_total", data_class=ENTERPRISE), lambda v: v >= 300
    )
    assert routed >= 300
    with Stream(bus, 300) as stream:
        grant = grants(bus).apply(
            department="HRSS",
            requester="clerk Zhao",
            consumer="hrss-si",
            data_class=ENTERPRISE,
            purpose="employer registration checks",
            scenario="social insurance enrolment",
            fields=["uscc", "name", "seq"],
        )
        wait_routed(bus.router, 1)
        replayed = backfill(bus, "HRSS", "hrss-si", ENTERPRISE)
        after = stream.next
        # Live records keep flowing after the backfill, so the two must meet.
        eventually(lambda: stream.next, lambda n: n >= after + 50)
    total = stream.next
    assert grant.state.value == "approved"
    assert replayed >= 300

    received = collect(bus.settings, "hrss-si", total, idle_timeout_s=20)
    seqs = [d.value["seq"] for d in received.deliveries]
    assert sorted(seqs) == list(range(total))  # no gap
    assert received.duplicates == 0
    assert end_offsets(bus.access, bus.topics.delivery("hrss-si")) == total  # no record sent twice
    history = [d for d in received.deliveries if d.backfill is not None]
    live = [d for d in received.deliveries if d.backfill is None]
    assert len(history) == replayed
    assert live, "live records after the hand-over"
    # The grant's fields as of now, for history and live alike.
    assert all(set(d.value) == {"uscc", "name", "seq"} for d in received.deliveries)
    url = bus.router.metrics_url
    assert metric(url, "sharebus_backfill_records_total", consumer="hrss-si", data_class=ENTERPRISE) == replayed
    assert metric(url, "sharebus_records_total", consumer="hrss-si", data_class=ENTERPRISE) == len(live)


def test_backfill_needs_an_entitlement_and_applies_the_grants_field_rules(bus: Bus) -> None:
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(20)))
    with pytest.raises(GrantRefused, match="not entitled"):
        request_backfill(
            bus.catalogue, bus.access, bus.topics, "TAX", "tax-levy", PENALTY, verifier=control_keys().verifier
        )
    with pytest.raises(GrantRefused, match="has no system"):
        request_backfill(
            bus.catalogue, bus.access, bus.topics, "PSB", "tax-levy", PENALTY, verifier=control_keys().verifier
        )

    service = grants(bus)
    grant = service.apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=PENALTY,
        purpose="tax credit rating",
        scenario="annual rating",
        fields=["uscc", "person_id_number", "seq"],
        masked_fields=["person_id_number"],
    )
    service.approve(grant.grant_id, department="AMR", valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    wait_routed(bus.router, 2)
    assert backfill(bus, "TAX", "tax-levy", PENALTY) == 20
    publish_records(bus.settings, PENALTY, (penalty(seq) for seq in range(20, 25)))

    received = collect(bus.settings, "tax-levy", 25, idle_timeout_s=15).deliveries
    assert sorted(d.value["seq"] for d in received) == list(range(25))
    assert sorted(d.value["seq"] for d in received if d.backfill is not None) == list(range(20))
    for delivery in received:
        assert set(delivery.value) == {"uscc", "person_id_number", "seq"}
        assert delivery.value["person_id_number"] == "110105********002X"
    backfilled = [
        m for m in read_all(bus.access, bus.topics.delivery("tax-levy"), 25) if h.BACKFILL in h.header_map(m.headers())
    ]
    assert all(h.header_map(m.headers())[h.GRANT_ID] == grant.grant_id.encode() for m in backfilled)


def test_periodic_backfill_replays_released_windows_and_leaves_the_open_one_to_its_batch(clocked: ClockedBus) -> None:
    bus = clocked.bus
    daily = clocked.window(STATS)
    publish_records(bus.settings, STATS, (stats(seq) for seq in range(10)))
    assert (
        eventually(
            lambda: metric(bus.router.metrics_url, "sharebus_records_received_total", data_class=STATS),
            lambda v: v >= 10,
        )
        == 10
    )
    clocked.move_clock_past(daily.end)
    released = eventually(
        lambda: metric(bus.router.metrics_url, "sharebus_batches_released_total", data_class=STATS), lambda v: v >= 1
    )
    assert released == 1
    # The open window already holds two records when tax-levy is granted the class.
    publish_records(bus.settings, STATS, (stats(seq) for seq in range(10, 12)))
    grants(bus).apply(
        department="TAX",
        requester="officer Li",
        consumer="tax-levy",
        data_class=STATS,
        purpose="licence statistics",
        scenario="district tax planning",
        fields=["district_code", "issued", "seq"],
    )
    wait_routed(bus.router, 1)
    assert backfill(bus, "TAX", "tax-levy", STATS) == 10
    clocked.move_clock_past(daily.end + dt.timedelta(days=1))
    received = collect(bus.settings, "tax-levy", 10, expected_batches=1, idle_timeout_s=20)
    assert sorted(d.value["seq"] for d in received.deliveries) == list(range(10))
    assert all(d.backfill is not None for d in received.deliveries)
    assert [sorted(r.value["seq"] for r in b.records) for b in received.batches] == [[10, 11]]


def test_the_cli_asks_for_a_backfill_through_the_gateway_as_its_keys_department(
    gateway_bus: GatewayBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gb = gateway_bus
    bus = gb.bus
    bus.use_in_env(monkeypatch)
    monkeypatch.setenv("SHAREBUS_GATEWAY_URL", gb.gateway.base_url)
    publish_enterprises(bus.settings, range(5))
    request = ["backfill", "request", "--class", ENTERPRISE, "--system", "hrss-si"]

    monkeypatch.setenv("SHAREBUS_API_KEY", gb.tokens["tax-levy"])
    assert cli(request) == 3  # TAX's key, HRSS's system
    assert "TAX may only ask for backfills to its own systems" in capsys.readouterr().err
    assert cli([*request, "--as", "HRSS"]) == 3  # and --as does not make it HRSS's
    assert "acts for TAX" in capsys.readouterr().err

    monkeypatch.setenv("SHAREBUS_API_KEY", gb.tokens["hrss-si"])
    assert cli(request) == 3  # not entitled before its application
    assert "apply for a grant first" in capsys.readouterr().err
    grants(bus).apply(
        department="HRSS",
        requester="clerk Zhao",
        consumer="hrss-si",
        data_class=ENTERPRISE,
        purpose="employer registration checks",
        scenario="social insurance enrolment",
        fields=["uscc", "name", "seq"],
    )
    wait_routed(bus.router, 1)
    assert cli([*request, "--as", "HRSS", "--wait", "60", "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert (outcome["state"], outcome["requested_by"]) == ("done", "HRSS")
    assert cli(["backfill", "list"]) == 0
    assert outcome["request_id"] in capsys.readouterr().out

    monkeypatch.setenv("SHAREBUS_API_KEY", gb.tokens["tax-levy"])
    assert cli(["backfill", "list"]) == 0  # another department's requests stay out of sight
    assert capsys.readouterr().out.strip() == "no backfill requests"
